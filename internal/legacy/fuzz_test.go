package legacy

import (
	"io/fs"
	"os"
	"path"
	"testing"
	"testing/fstest"

	"github.com/obol/obol/internal/offer"
)

func fstestFS(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{}
	for p, s := range files {
		m[p] = &fstest.MapFile{Data: []byte(s), Mode: 0o600}
	}
	return m
}

// seeds adds every fixture file of dir as a seed.
func seeds(f *testing.F, dir string) {
	err := fs.WalkDir(os.DirFS("testdata/config"), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(os.DirFS("testdata/config"), p)
		if err == nil {
			f.Add(b)
		}
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
}

// checkRead asserts what Read promises on any input: every offer it returns validates and
// survives offer.yaml's round trip, and every file is either imported or reported.
func checkRead(t *testing.T, fsys fstest.MapFS, file string) {
	res := Read(fsys)
	seen := map[string]bool{}
	for _, it := range res.Items {
		seen[it.Path] = true
		if err := offer.Validate(it.Offer); err != nil {
			t.Fatalf("%s: returned offer does not validate: %v", it.Path, err)
		}
		b, err := offer.Encode(it.Offer)
		if err != nil {
			t.Fatalf("%s: encode: %v", it.Path, err)
		}
		back, err := offer.Decode("offer.yaml", b)
		if err != nil {
			t.Fatalf("%s: decode of encoded offer: %v\n%s", it.Path, err, b)
		}
		if err := offer.Validate(back); err != nil {
			t.Fatalf("%s: round-tripped offer does not validate: %v", it.Path, err)
		}
	}
	for _, p := range res.Problems {
		if !p.Kind.IsNote() {
			seen[p.Path] = true
		}
	}
	if !seen[file] {
		t.Fatalf("%s: neither imported nor reported: %+v", file, res)
	}
}

func FuzzReadInference(f *testing.F) {
	seeds(f, InferenceDir)
	f.Add([]byte(`{"deleted_at": 7}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file := path.Join(InferenceDir, "x", "config.json")
		checkRead(t, fstest.MapFS{file: {Data: data}}, file)
	})
}

func FuzzReadSellLedger(f *testing.F) {
	seeds(f, SellLedgerDir)
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [1, null]\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file := path.Join(SellLedgerDir, "default__x.yaml")
		checkRead(t, fstest.MapFS{file: {Data: data}}, file)
	})
}
