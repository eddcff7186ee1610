// Command mkimage builds the gateway's OCI image without Docker (see internal/ociimage):
//
//	go run ./hack/mkimage --binary bin/obol-gateway --tag ghcr.io/obol/obol-gateway:0.1.0 \
//	    --out bin/obol-gateway.tar --layout bin/obol-gateway-oci
//
// --out is a docker-save tarball (k3d image import, ctr images import, docker load); --layout is
// an OCI image layout directory (skopeo copy oci:DIR:TAG ..., crane push --index DIR). It prints
// the image's reference and digest. The same inputs give the same digest.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/obol/obol/internal/ociimage"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	binary := fs.String("binary", "", "the static linux binary to package (required)")
	tag := fs.String("tag", "", "the image reference, e.g. ghcr.io/obol/obol-gateway:0.1.0 (required)")
	out := fs.String("out", "", "write a docker-save tarball here")
	layoutDir := fs.String("layout", "", "write an OCI image layout directory here (replaced if it is one)")
	arch := fs.String("arch", "amd64", "the image's architecture; the binary must match it")
	version := fs.String("version", "", "org.opencontainers.image.version (default: the tag)")
	source := fs.String("source", ociimage.Source, "org.opencontainers.image.source")
	title := fs.String("title", "", "org.opencontainers.image.title (default: the binary's name in the image)")
	entry := fs.String("path", ociimage.BinaryPath, "where the binary goes in the image; the entrypoint")
	port := fs.Int("port", ociimage.Port, "the TCP port the image declares (the port the binary listens on by default)")
	caCerts := fs.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", `CA certificates (PEM) to install at `+ociimage.CACertsPath+`; "" for none`)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mkimage --binary FILE --tag REF [--out FILE.tar] [--layout DIR]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mkimage:", err)
		return 1
	}
	if *binary == "" || *tag == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if *out == "" && *layoutDir == "" {
		fmt.Fprintln(stderr, "mkimage: nothing to write: give --out, --layout or both")
		return 2
	}
	ref, err := name.NewTag(*tag)
	if err != nil {
		return fail(fmt.Errorf("--tag: %w", err))
	}
	bin, err := os.ReadFile(*binary)
	if err != nil {
		return fail(err)
	}
	opts := ociimage.Options{Binary: bin, Path: *entry, Port: *port, Arch: *arch, Version: *version, Source: *source, Title: *title}
	if opts.Version == "" {
		opts.Version = ref.TagStr()
	}
	if opts.Title == "" {
		opts.Title = path.Base(*entry)
	}
	if *caCerts != "" {
		if opts.CACerts, err = os.ReadFile(*caCerts); err != nil {
			return fail(fmt.Errorf("--ca-certs: %w (pass --ca-certs '' to build without them)", err))
		}
	}
	img, err := ociimage.Build(opts)
	if err != nil {
		return fail(err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fail(err)
	}
	if *out != "" {
		if err := ociimage.WriteTarball(*out, img, *tag); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "wrote %s (docker-save tarball)\n", *out)
	}
	if *layoutDir != "" {
		if err := ociimage.WriteLayout(*layoutDir, img, *tag); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stderr, "wrote %s (OCI image layout)\n", *layoutDir)
	}
	fmt.Fprintf(stdout, "%s@%s\n", ref.String(), digest)
	return 0
}
