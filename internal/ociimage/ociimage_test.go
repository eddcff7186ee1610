package ociimage_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/obol/obol/internal/ociimage"

	"github.com/obol/obol/internal/chart/charttest"
)

const (
	ref     = "ghcr.io/obol/obol-gateway:0.1.0-test"
	version = "0.1.0-test"
)

var (
	binDir string
	build  struct {
		once sync.Once
		// payload is the binary put into the image: cmd/obol-gateway when it builds, else
		// hack/mkimage; args runs it and want is what its output must contain.
		payload, mkimage string
		args             []string
		want             string
		err              error
	}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ociimage-test")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goBuild builds pkg as `make gateway` does: static, trimmed, stripped, for linux and this
// machine's architecture (so the test can run what it packed).
func goBuild(root, pkg, out, ldflags string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// binaries builds hack/mkimage and, when it compiles, cmd/obol-gateway, once per test run.
func binaries(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("runs the packed linux binary")
	}
	build.once.Do(func() {
		root, err := charttest.ModuleRoot()
		if err != nil {
			build.err = err
			return
		}
		build.mkimage = filepath.Join(binDir, "mkimage")
		if build.err = goBuild(root, "./hack/mkimage", build.mkimage, "-s -w"); build.err != nil {
			return
		}
		gw := filepath.Join(binDir, "obol-gateway")
		if _, err := os.Stat(filepath.Join(root, "cmd", "obol-gateway")); err == nil {
			err := goBuild(root, "./cmd/obol-gateway", gw, "-s -w -X main.version="+version)
			if err == nil {
				build.payload, build.args, build.want = gw, []string{"--version"}, "obol-gateway "+version
				return
			}
			fmt.Fprintf(os.Stderr, "ociimage test: cmd/obol-gateway does not build, packing hack/mkimage instead: %v\n", err)
		}
		build.payload, build.args, build.want = build.mkimage, []string{"-h"}, "usage: mkimage"
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
}

func payload(t *testing.T) []byte {
	t.Helper()
	binaries(t)
	b, err := os.ReadFile(build.payload)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var caCerts = []byte("-----BEGIN CERTIFICATE-----\nnot a real certificate, just bytes to place\n-----END CERTIFICATE-----\n")

func options(t *testing.T) ociimage.Options {
	return ociimage.Options{Binary: payload(t), Arch: runtime.GOARCH, Version: version, CACerts: caCerts}
}

// checkIntegrity recomputes every digest and size the manifest and config claim.
func checkIntegrity(t *testing.T, img v1.Image) {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(raw); d.Hex != hex.EncodeToString(sum[:]) {
		t.Errorf("manifest digest %s does not match its bytes", d)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(cfg); m.Config.Digest.Hex != hex.EncodeToString(sum[:]) || m.Config.Size != int64(len(cfg)) {
		t.Errorf("config descriptor %+v does not match the config", m.Config)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 || len(m.Layers) != 1 || len(cf.RootFS.DiffIDs) != 1 {
		t.Fatalf("%d layers, %d in the manifest, %d diff ids", len(layers), len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	sum := func(open func() (io.ReadCloser, error)) (string, int64) {
		rc, err := open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(h.Sum(nil)), n
	}
	if got, n := sum(layers[0].Compressed); got != m.Layers[0].Digest.Hex || n != m.Layers[0].Size {
		t.Errorf("layer blob sha256:%s (%d bytes), manifest says %s (%d)", got, n, m.Layers[0].Digest, m.Layers[0].Size)
	}
	if got, _ := sum(layers[0].Uncompressed); got != cf.RootFS.DiffIDs[0].Hex {
		t.Errorf("layer diff id sha256:%s, config says %s", got, cf.RootFS.DiffIDs[0])
	}
}

// checkConfig asserts what a runtime reads from the image config.
func checkConfig(t *testing.T, img v1.Image) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !cf.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("created %s, want the epoch", cf.Created)
	}
	c := cf.Config
	if !reflect.DeepEqual(c.Entrypoint, []string{ociimage.BinaryPath}) || len(c.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
	}
	if c.User != "65532:65532" {
		t.Errorf("user %q", c.User)
	}
	if !reflect.DeepEqual(c.ExposedPorts, map[string]struct{}{"8402/tcp": {}}) {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.version": version,
		"org.opencontainers.image.source":  "https://github.com/obol/obol",
		"org.opencontainers.image.title":   "obol-gateway",
	}
	if !reflect.DeepEqual(c.Labels, wantLabels) {
		t.Errorf("labels %v", c.Labels)
	}
}

// checkFiles reads the image's layer as a runtime unpacks it: modes, owners and times; and
// runs the binary.
func checkFiles(t *testing.T, img v1.Image, wantBinary []byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[string]*tar.Header{}
	var bin, passwd, group, certs []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
		if !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: mtime %s, want the epoch", h.Name, h.ModTime)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		switch h.Name {
		case "usr/local/bin/obol-gateway":
			bin = b
		case "etc/passwd":
			passwd = b
		case "etc/group":
			group = b
		case "etc/ssl/certs/ca-certificates.crt":
			certs = b
		}
	}
	h := seen["usr/local/bin/obol-gateway"]
	if h == nil {
		t.Fatalf("no /usr/local/bin/obol-gateway in the image: %v", keys(seen))
	}
	if h.Typeflag != tar.TypeReg || h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 {
		t.Errorf("binary: type %c mode %o uid %d gid %d", h.Typeflag, h.Mode, h.Uid, h.Gid)
	}
	if tmp := seen["tmp/"]; tmp == nil || tmp.Typeflag != tar.TypeDir || tmp.Mode != 0o1777 {
		t.Errorf("/tmp: %+v", tmp)
	}
	for _, d := range []string{"etc/", "usr/", "usr/local/", "usr/local/bin/"} {
		if seen[d] == nil || seen[d].Typeflag != tar.TypeDir || seen[d].Uid != 0 {
			t.Errorf("directory %s: %+v", d, seen[d])
		}
	}
	if !bytes.Contains(passwd, []byte("\nnonroot:x:65532:65532:")) || !bytes.Contains(group, []byte("\nnonroot:x:65532:")) {
		t.Errorf("passwd %q group %q", passwd, group)
	}
	if !bytes.Equal(certs, caCerts) {
		t.Errorf("CA certificates: %q", certs)
	}
	if !bytes.Equal(bin, wantBinary) {
		t.Fatal("the binary in the image is not the binary packed")
	}
	exe := filepath.Join(t.TempDir(), "obol-gateway")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, build.args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", exe, build.args, err, out)
	}
	if !strings.Contains(string(out), build.want) {
		t.Errorf("%s %v printed %q, want %q", exe, build.args, out, build.want)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// The image read back from the docker-save tarball and from the OCI layout is the image built:
// its config, its layer, its files; and its binary runs.
func TestImageRoundTrip(t *testing.T) {
	opts := options(t)
	img, err := ociimage.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	checkIntegrity(t, img)
	checkConfig(t, img)
	mt, _ := img.MediaType()
	m, _ := img.Manifest()
	if mt != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("media types: manifest %s config %s layer %s", mt, m.Config.MediaType, m.Layers[0].MediaType)
	}
	digest, _ := img.Digest()
	configName, _ := img.ConfigName()

	dir := t.TempDir()
	tarPath, layoutDir := filepath.Join(dir, "obol-gateway.tar"), filepath.Join(dir, "oci")
	if err := ociimage.WriteTarball(tarPath, img, ref); err != nil {
		t.Fatal(err)
	}
	if err := ociimage.WriteLayout(layoutDir, img, ref); err != nil {
		t.Fatal(err)
	}

	t.Run("tarball", func(t *testing.T) {
		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		fromTar, err := tarball.ImageFromPath(tarPath, &tag)
		if err != nil {
			t.Fatal(err)
		}
		checkIntegrity(t, fromTar)
		checkConfig(t, fromTar)
		if cn, _ := fromTar.ConfigName(); cn != configName {
			t.Errorf("config %s, built %s", cn, configName)
		}
		tm, _ := fromTar.Manifest()
		if tm.Layers[0].Digest != m.Layers[0].Digest {
			t.Errorf("layer %s, built %s", tm.Layers[0].Digest, m.Layers[0].Digest)
		}
		checkFiles(t, fromTar, opts.Binary)
		manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(tarPath) })
		if err != nil {
			t.Fatal(err)
		}
		if len(manifest) != 1 || !reflect.DeepEqual(manifest[0].RepoTags, []string{ref}) {
			t.Errorf("docker-save manifest.json: %+v", manifest)
		}
	})

	t.Run("layout", func(t *testing.T) {
		p, err := layout.FromPath(layoutDir)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := p.ImageIndex()
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(im.Manifests) != 1 {
			t.Fatalf("%d manifests in the layout", len(im.Manifests))
		}
		desc := im.Manifests[0]
		if desc.Digest != digest || desc.MediaType != types.OCIManifestSchema1 {
			t.Errorf("layout holds %s %s, built %s", desc.MediaType, desc.Digest, digest)
		}
		if desc.Annotations[ociimage.AnnotationRefName] != version || desc.Annotations[ociimage.AnnotationContainerdName] != ref {
			t.Errorf("annotations %v", desc.Annotations)
		}
		if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != runtime.GOARCH {
			t.Errorf("platform %+v", desc.Platform)
		}
		fromLayout, err := p.Image(digest)
		if err != nil {
			t.Fatal(err)
		}
		checkIntegrity(t, fromLayout)
		checkConfig(t, fromLayout)
		if d, _ := fromLayout.Digest(); d != digest {
			t.Errorf("layout image digest %s, built %s", d, digest)
		}
		checkFiles(t, fromLayout, opts.Binary)
	})
}

// The same inputs give the same image, byte for byte: digest, tarball and layout.
func TestReproducible(t *testing.T) {
	opts := options(t)
	var digests []v1.Hash
	var tars [][]byte
	var indexes [][]byte
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "oci") // written twice: the second write replaces the first
	for i := 0; i < 2; i++ {
		img, err := ociimage.Build(opts)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
		tarPath := filepath.Join(dir, fmt.Sprintf("%d.tar", i))
		if err := ociimage.WriteTarball(tarPath, img, ref); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(tarPath)
		if err != nil {
			t.Fatal(err)
		}
		tars = append(tars, b)
		if err := ociimage.WriteLayout(layoutDir, img, ref); err != nil {
			t.Fatal(err)
		}
		idx, err := os.ReadFile(filepath.Join(layoutDir, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, idx)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds: %s, %s", digests[0], digests[1])
	}
	if !bytes.Equal(tars[0], tars[1]) {
		t.Error("two tarballs differ")
	}
	if !bytes.Equal(indexes[0], indexes[1]) {
		t.Errorf("two layouts differ:\n%s\n%s", indexes[0], indexes[1])
	}
	blobs, err := os.ReadDir(filepath.Join(layoutDir, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 3 { // manifest, config, layer: the replaced layout left nothing behind
		t.Errorf("%d blobs in the layout", len(blobs))
	}
	// And the inputs do matter.
	opts.Version = "other"
	img, err := ociimage.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d == digests[0] {
		t.Error("another version label gave the same digest")
	}
}

// Without CA certificates the image has no /etc/ssl; the config is the same otherwise.
func TestNoCACerts(t *testing.T) {
	opts := options(t)
	opts.CACerts = nil
	img, err := ociimage.Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(h.Name, "etc/ssl") {
			t.Errorf("%s in an image built without CA certificates", h.Name)
		}
	}
}

func TestBuildRefusesWhatCannotRun(t *testing.T) {
	bin := payload(t)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	cases := map[string]struct {
		opts ociimage.Options
		want string
	}{
		"no binary":    {ociimage.Options{}, "no binary"},
		"not ELF":      {ociimage.Options{Binary: []byte("#!/bin/sh\necho hi\n")}, "not an ELF"},
		"wrong arch":   {ociimage.Options{Binary: bin, Arch: other}, "(build it with GOARCH=" + other + ")"},
		"unknown arch": {ociimage.Options{Binary: bin, Arch: "vax"}, "unknown architecture"},
		"relative":     {ociimage.Options{Binary: bin, Arch: runtime.GOARCH, Path: "obol-gateway"}, "not a clean absolute"},
		"collision":    {ociimage.Options{Binary: bin, Arch: runtime.GOARCH, Path: "/etc/passwd"}, "collides"},
		"windows":      {ociimage.Options{Binary: bin, Arch: runtime.GOARCH, OS: "windows"}, "only linux"},
	}
	if dyn, err := os.ReadFile("/bin/true"); err == nil && runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		cases["dynamic"] = struct {
			opts ociimage.Options
			want string
		}{ociimage.Options{Binary: dyn}, "dynamically linked"}
	}
	for n, c := range cases {
		t.Run(n, func(t *testing.T) {
			_, err := ociimage.Build(c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want an error containing %q, got %v", c.want, err)
			}
		})
	}
}

// WriteLayout replaces an OCI layout but never a directory that is something else.
func TestWriteLayoutRefusesForeignDir(t *testing.T) {
	img, err := ociimage.Build(options(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ociimage.WriteLayout(dir, img, ref); err == nil || !strings.Contains(err.Error(), "not an OCI layout") {
		t.Fatalf("want a refusal, got %v", err)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Fatalf("the directory was touched: %v", err)
	}
	if err := ociimage.WriteTarball(filepath.Join(dir, "x.tar"), img, "Not A Ref"); err == nil {
		t.Error("a bad reference was accepted")
	}
}

// hack/mkimage, as `make image` runs it, writes both outputs and prints ref@digest.
func TestMkimage(t *testing.T) {
	binaries(t)
	dir := t.TempDir()
	certs := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(certs, caCerts, 0o644); err != nil {
		t.Fatal(err)
	}
	tarPath, layoutDir := filepath.Join(dir, "bin", "obol-gateway.tar"), filepath.Join(dir, "bin", "obol-gateway-oci")
	cmd := exec.Command(build.mkimage, "--binary", build.payload, "--tag", ref, "--out", tarPath, "--layout", layoutDir,
		"--arch", runtime.GOARCH, "--ca-certs", certs)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mkimage: %v\n%s", err, stderr.String())
	}
	img, err := ociimage.Build(options(t))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if got := strings.TrimSpace(stdout.String()); got != ref+"@"+d.String() {
		t.Errorf("mkimage printed %q, the same inputs build %s@%s", got, ref, d)
	}
	idx, err := os.ReadFile(filepath.Join(layoutDir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(idx, &index); err != nil || len(index.Manifests) != 1 || index.Manifests[0].Digest != d.String() {
		t.Errorf("layout index %s (%v)", idx, err)
	}
	if _, err := os.Stat(tarPath); err != nil {
		t.Error(err)
	}
	// --port is the port the image declares: obol-git's image listens on 8080, not the
	// gateway's 8402 (it declared 8402 before the flag existed).
	portLayout := filepath.Join(dir, "bin", "obol-git-oci")
	if out, err := exec.Command(build.mkimage, "--binary", build.payload, "--tag", ref, "--layout", portLayout,
		"--arch", runtime.GOARCH, "--ca-certs", "", "--port", "8080").CombinedOutput(); err != nil {
		t.Fatalf("mkimage --port: %v\n%s", err, out)
	}
	lp, err := layout.FromPath(portLayout)
	if err != nil {
		t.Fatal(err)
	}
	ii, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := ii.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("layout %s: %v", portLayout, err)
	}
	pimg, err := ii.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := pimg.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok || len(cf.Config.ExposedPorts) != 1 {
		t.Errorf("mkimage --port 8080: exposed ports %v, want only 8080/tcp", cf.Config.ExposedPorts)
	}
	// Usage errors exit 2 and write nothing.
	for _, args := range [][]string{{}, {"--binary", build.payload}, {"--binary", build.payload, "--tag", ref}} {
		c := exec.Command(build.mkimage, args...)
		c.Dir = t.TempDir()
		err := c.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("mkimage %v: %v, want exit 2", args, err)
		}
	}
}
