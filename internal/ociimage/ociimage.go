// Package ociimage builds the in-cluster binaries' OCI images without Docker: a FROM-scratch
// image holding one static binary, a passwd/group naming the non-root user it runs as, CA
// certificates for its TLS calls and an empty /tmp. Every timestamp is the Unix epoch and every
// file is written in a fixed order, so the same inputs always give the same image digest.
//
// The image is written as a docker-save tarball (docker load, k3d image import, ctr images
// import, kind load image-archive) and as an OCI image layout directory (skopeo, crane, oras).
package ociimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Defaults of the gateway's image.
const (
	// BinaryPath is where the binary is installed and what the image runs.
	BinaryPath = "/usr/local/bin/obol-gateway"
	// UID and GID are the non-root user and group the image runs as (distroless's "nonroot").
	UID = 65532
	GID = 65532
	// Port is the port the image declares (the gateway's --listen default).
	Port = 8402
	// CACertsPath is where CA certificates go: the first file Go's crypto/x509 reads on Linux.
	CACertsPath = "/etc/ssl/certs/ca-certificates.crt"
	// Source is the default org.opencontainers.image.source label.
	Source = "https://github.com/obol/obol"
)

// Options describe an image.
type Options struct {
	// Binary is the executable: a static (CGO_ENABLED=0) ELF binary for OS/Arch. Required.
	Binary []byte
	// Path is where the binary goes and the entrypoint; default BinaryPath.
	Path string
	// OS and Arch are the platform (default linux, amd64); the binary must match Arch.
	OS, Arch string
	// Port is the TCP port the image declares; default Port.
	Port int
	// Version, Source and Title are the org.opencontainers.image.{version,source,title}
	// labels. Source defaults to Source, Title to the binary's name; an empty Version is left out.
	Version, Source, Title string
	// CACerts, when not empty, are installed at CACertsPath (PEM). A binary that calls HTTPS
	// services (the gateway calls its facilitator) needs them: scratch has none.
	CACerts []byte
	// Created is the image's creation time and every file's mtime; zero means the Unix epoch,
	// which makes the image reproducible.
	Created time.Time
}

func (o *Options) defaults() {
	if o.Path == "" {
		o.Path = BinaryPath
	}
	if o.OS == "" {
		o.OS = "linux"
	}
	if o.Arch == "" {
		o.Arch = "amd64"
	}
	if o.Port == 0 {
		o.Port = Port
	}
	if o.Source == "" {
		o.Source = Source
	}
	if o.Title == "" {
		o.Title = path.Base(o.Path)
	}
	if o.Created.IsZero() {
		o.Created = time.Unix(0, 0)
	}
	o.Created = o.Created.UTC()
}

// Build assembles the image: one OCI layer, an OCI manifest and config.
func Build(opts Options) (v1.Image, error) {
	opts.defaults()
	if !path.IsAbs(opts.Path) || path.Clean(opts.Path) != opts.Path || opts.Path == "/" {
		return nil, fmt.Errorf("image: binary path %q is not a clean absolute file path", opts.Path)
	}
	if opts.OS != "linux" {
		return nil, fmt.Errorf("image: OS %q: only linux images are built", opts.OS)
	}
	if err := CheckBinary(opts.Binary, opts.Arch); err != nil {
		return nil, err
	}
	rootfs, err := layerTar(opts)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(rootfs)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	created := v1.Time{Time: opts.Created}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: "obol ociimage " + opts.Path, Comment: contents(opts)},
	})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = opts.OS, opts.Arch
	cf.Created = created
	labels := map[string]string{
		"org.opencontainers.image.source": opts.Source,
		"org.opencontainers.image.title":  opts.Title,
	}
	if opts.Version != "" {
		labels["org.opencontainers.image.version"] = opts.Version
	}
	user := strconv.Itoa(UID) + ":" + strconv.Itoa(GID)
	cf.Config = v1.Config{
		Entrypoint:   []string{opts.Path},
		User:         user,
		WorkingDir:   "/",
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		ExposedPorts: map[string]struct{}{strconv.Itoa(opts.Port) + "/tcp": {}},
		Labels:       labels,
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image: config: %w", err)
	}
	return img, nil
}

// contents says what the layer holds, for the image's history.
func contents(o Options) string {
	s := "static binary, /etc/passwd, /etc/group, /tmp"
	if len(o.CACerts) > 0 {
		s += ", CA certificates"
	}
	return s
}

// CheckBinary refuses what cannot run FROM scratch on arch: anything but an ELF executable for
// that architecture, and a dynamically linked one (a cgo build needs a libc the image lacks,
// and fails at start with a baffling "no such file or directory").
func CheckBinary(b []byte, arch string) error {
	if len(b) == 0 {
		return errors.New("image: no binary")
	}
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("image: the binary is not an ELF executable (build it with GOOS=linux): %w", err)
	}
	defer f.Close()
	want, ok := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386, "riscv64": elf.EM_RISCV, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390}[arch]
	if !ok {
		return fmt.Errorf("image: unknown architecture %q", arch)
	}
	if f.Machine != want {
		return fmt.Errorf("image: the binary is for %s, not %s (build it with GOARCH=%s)", f.Machine, arch, arch)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("image: the binary is an ELF %s, not an executable", f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("image: the binary is dynamically linked; build it with CGO_ENABLED=0 (a scratch image has no libc or loader)")
		}
	}
	return nil
}

// entry is one file of the layer.
type entry struct {
	name     string // relative, no leading slash; directories end in /
	mode     int64
	uid, gid int
	data     []byte
}

// layerTar writes the image's only layer: parents before children, in a fixed order, every
// entry with the same mtime, so the bytes (and the digest) depend on the inputs only.
func layerTar(o Options) ([]byte, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	entries := []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
	}
	if len(o.CACerts) > 0 {
		entries = append(entries,
			entry{name: "etc/ssl/", mode: 0o755},
			entry{name: "etc/ssl/certs/", mode: 0o755},
			entry{name: strings.TrimPrefix(CACertsPath, "/"), mode: 0o644, data: o.CACerts})
	}
	entries = append(entries,
		entry{name: "home/", mode: 0o755},
		entry{name: "home/nonroot/", mode: 0o700, uid: UID, gid: GID},
		entry{name: "tmp/", mode: 0o1777},
	)
	// The binary's parent directories, then the binary.
	bin := strings.TrimPrefix(o.Path, "/")
	dirs := strings.Split(path.Dir(bin), "/")
	have := map[string]bool{}
	for _, e := range entries {
		have[e.name] = true
	}
	for i := range dirs {
		d := strings.Join(dirs[:i+1], "/") + "/"
		if d != "./" && !have[d] {
			entries = append(entries, entry{name: d, mode: 0o755})
			have[d] = true
		}
	}
	if have[bin] || have[bin+"/"] {
		return nil, fmt.Errorf("image: binary path %s collides with a file of the image", o.Path)
	}
	// Owned by root: the runtime user (UID) may run the binary but never replace it.
	entries = append(entries, entry{name: bin, mode: 0o755, uid: 0, gid: 0, data: o.Binary})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: o.Created,
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image: layer %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("image: layer %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	return buf.Bytes(), nil
}

// parseTag reads ref as a tagged image reference; a missing tag is "latest", as docker says.
func parseTag(ref string) (name.Tag, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image: reference %q: %w", ref, err)
	}
	return tag, nil
}

// WriteTarball writes img tagged ref as a docker-save tarball (manifest.json with RepoTags), the
// format `docker load`, `k3d image import`, `ctr images import` and `kind load image-archive`
// read. The file is replaced atomically.
func WriteTarball(file string, img v1.Image, ref string) error {
	tag, err := parseTag(ref)
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tarball.Write(tag, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("image: tarball %s: %w", file, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// Annotations of the image's entry in an OCI layout's index.json.
const (
	// AnnotationRefName is the OCI tag of the image in the layout (skopeo oci:DIR:TAG).
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationContainerdName is the full image name containerd imports it as.
	AnnotationContainerdName = "io.containerd.image.name"
)

// WriteLayout writes img as the only image of an OCI image layout in dir, annotated with ref
// (ref.name is its tag, io.containerd.image.name the whole reference). A dir that already holds
// an OCI layout is replaced; any other non-empty dir is refused.
func WriteLayout(dir string, img v1.Image, ref string) error {
	tag, err := parseTag(ref)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(ents) > 0:
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("image: %s is not empty and not an OCI layout; refusing to replace it", dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image: layout %s: %w", dir, err)
	}
	err = p.AppendImage(img,
		layout.WithAnnotations(map[string]string{AnnotationRefName: tag.TagStr(), AnnotationContainerdName: tag.String()}),
		layout.WithPlatform(v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}))
	if err != nil {
		return fmt.Errorf("image: layout %s: %w", dir, err)
	}
	return nil
}
