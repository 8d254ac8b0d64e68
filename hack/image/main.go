// Command image writes a container image tarball for one static binary
// without Docker and without pulling a base image: an empty base, the
// binary, the build machine's CA certificates, /etc/passwd and /etc/group
// entries for the nonroot user (65532), that user as the image's user, and
// the OCI source/revision/version labels. Every timestamp is fixed (-created),
// so the same inputs give the same image digest.
//
// The tarball is in the docker-archive format (`docker save`), which
// `ctr -n k8s.io images import`, `docker load` and `podman load` all accept;
// the manifest, config and layers use OCI media types. The image's digest (of
// its OCI manifest, as a registry would report it) is written beside it
// (<out>.digest), and so is its ID (the config's digest, which is what
// `ctr images ls` and the kubelet report after an import of the tarball,
// since docker-archive carries no manifest) in <out>.id.
//
//	go run ./hack/image -binary bin/keyferry -ref ghcr.io/keyferry/keyferry:v1.2.3 \
//	  -args controller -revision $(git rev-parse HEAD) -version v1.2.3 -out bin/image/keyferry.tar
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Nonroot is the uid and gid the image runs as (distroless' "nonroot").
const Nonroot = 65532

// Label keys of the OCI image spec's pre-defined annotations.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
)

// Spec describes one image.
type Spec struct {
	// Binary is the static executable; it lands at /<base name>.
	Binary string
	// Args follow the binary in the entrypoint.
	Args []string
	// CACerts is a PEM bundle copied to /etc/ssl/certs/ca-certificates.crt;
	// empty leaves it out.
	CACerts string
	// Source, Revision and Version fill the OCI labels (empty ones are left out).
	Source, Revision, Version string
	// Created is every timestamp in the image.
	Created time.Time
	// Arch is the image's architecture; empty means runtime.GOARCH.
	Arch string
}

func main() {
	var (
		s       Spec
		out     string
		ref     string
		args    string
		created int64
	)
	flag.StringVar(&s.Binary, "binary", "", "static executable to put in the image (required)")
	flag.StringVar(&args, "args", "", "space-separated arguments that follow the binary in the entrypoint")
	flag.StringVar(&s.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", `CA bundle to include ("" leaves it out)`)
	flag.StringVar(&s.Source, "source", "https://github.com/keyferry/keyferry", "org.opencontainers.image.source")
	flag.StringVar(&s.Revision, "revision", "", "org.opencontainers.image.revision (the commit)")
	flag.StringVar(&s.Version, "version", "", "org.opencontainers.image.version")
	flag.Int64Var(&created, "created", 0, "every timestamp in the image, in Unix seconds (the commit time keeps digests reproducible)")
	flag.StringVar(&s.Arch, "arch", runtime.GOARCH, "image architecture")
	flag.StringVar(&ref, "ref", "", "image reference (repository:tag) recorded in the tarball (required)")
	flag.StringVar(&out, "out", "", "tarball to write (required)")
	flag.Parse()
	if s.Binary == "" || ref == "" || out == "" {
		flag.Usage()
		os.Exit(2)
	}
	s.Args = strings.Fields(args)
	s.Created = time.Unix(created, 0).UTC()
	digest, err := Write(s, ref, out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s %s\n", out, ref, digest)
}

// Write builds the image for s and writes it as a docker-archive tarball
// tagged ref to out, its digest to out+".digest" and its ID to out+".id". It
// returns the digest.
func Write(s Spec, ref, out string) (v1.Hash, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	img, err := Build(s)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("computing the image digest: %w", err)
	}
	if old, err := os.ReadFile(out + ".digest"); err == nil && strings.TrimSpace(string(old)) == digest.String() {
		if _, err := os.Stat(out); err == nil {
			return digest, nil // the same image is already there
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return v1.Hash{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".image-*")
	if err != nil {
		return v1.Hash{}, err
	}
	defer os.Remove(tmp.Name())
	if err := tarball.Write(tag, img, tmp); err != nil {
		_ = tmp.Close()
		return v1.Hash{}, fmt.Errorf("writing %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return v1.Hash{}, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return v1.Hash{}, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return v1.Hash{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("computing the image ID: %w", err)
	}
	if err := os.WriteFile(out+".digest", []byte(digest.String()+"\n"), 0o644); err != nil {
		return v1.Hash{}, err
	}
	if err := os.WriteFile(out+".id", []byte(id.String()+"\n"), 0o644); err != nil {
		return v1.Hash{}, err
	}
	return digest, nil
}

// Build returns the image for s.
func Build(s Spec) (v1.Image, error) {
	files, err := s.files()
	if err != nil {
		return nil, err
	}
	layerTar, err := tarFiles(files, s.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("building the layer: %w", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: s.Created},
			CreatedBy: "keyferry hack/image: " + path.Base(s.Binary) + ", CA certificates, nonroot user",
			Comment:   "built without a base image",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: s.Created}
	cf.OS = "linux"
	cf.Architecture = s.Arch
	user := strconv.Itoa(Nonroot) + ":" + strconv.Itoa(Nonroot)
	cf.Config = v1.Config{
		User:       user,
		Entrypoint: append([]string{"/" + path.Base(s.Binary)}, s.Args...),
		WorkingDir: "/",
		Env: []string{
			"PATH=/",
			"HOME=/home/nonroot",
			"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
		},
		Labels: map[string]string{},
	}
	for k, v := range map[string]string{LabelSource: s.Source, LabelRevision: s.Revision, LabelVersion: s.Version} {
		if v != "" {
			cf.Config.Labels[k] = v
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("setting the image config: %w", err)
	}
	return img, nil
}

// file is one entry of the image's only layer.
type file struct {
	name     string
	mode     int64
	uid, gid int
	dir      bool
	data     []byte
}

func (s Spec) files() ([]file, error) {
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	if len(bin) < 4 || string(bin[:4]) != "\x7fELF" {
		return nil, fmt.Errorf("%s is not an ELF executable", s.Binary)
	}
	dir := func(name string, mode int64, owner int) file {
		return file{name: name, mode: mode, uid: owner, gid: owner, dir: true}
	}
	files := []file{
		dir("etc", 0o755, 0),
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		dir("home", 0o755, 0),
		dir("home/nonroot", 0o700, Nonroot),
		dir("tmp", 0o1777, 0),
		{name: path.Base(s.Binary), mode: 0o755, data: bin},
	}
	if s.CACerts != "" {
		ca, err := os.ReadFile(s.CACerts)
		if err != nil {
			return nil, fmt.Errorf("reading CA certificates: %w", err)
		}
		if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
			return nil, fmt.Errorf("%s holds no PEM certificate", s.CACerts)
		}
		files = append(files,
			dir("etc/ssl", 0o755, 0),
			dir("etc/ssl/certs", 0o755, 0),
			file{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca})
	}
	return files, nil
}

// tarFiles writes files, sorted parents first, with fixed timestamps and
// numeric owners only.
func tarFiles(files []file, mtime time.Time) ([]byte, error) {
	// Sorted by path, so that a parent directory precedes its entries.
	sorted := slices.SortedFunc(slices.Values(files), func(a, b file) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range sorted {
		h := &tar.Header{
			Name:    f.name,
			Mode:    f.mode,
			Uid:     f.uid,
			Gid:     f.gid,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if f.dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing %s to the layer: %w", f.name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("writing %s to the layer: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, errors.Join(errors.New("closing the layer"), err)
	}
	return buf.Bytes(), nil
}
