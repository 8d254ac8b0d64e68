package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildOperator builds cmd/keyferry as `make image` does.
func buildOperator(t *testing.T, version string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "keyferry")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version, "-o", out, "../../cmd/keyferry")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building keyferry: %v\n%s", err, b)
	}
	return out
}

func TestImageIsReproducibleAndRunsAsNonroot(t *testing.T) {
	const (
		version = "v0.0.0-test"
		ref     = "ghcr.io/keyferry/keyferry:v0.0.0-test"
	)
	spec := Spec{
		Binary:   buildOperator(t, version),
		Args:     []string{"controller"},
		CACerts:  "/etc/ssl/certs/ca-certificates.crt",
		Source:   "https://github.com/keyferry/keyferry",
		Revision: "0123456789abcdef0123456789abcdef01234567",
		Version:  version,
		Created:  time.Unix(1700000000, 0).UTC(),
	}
	if _, err := os.Stat(spec.CACerts); err != nil {
		t.Fatalf("the build machine's CA bundle is missing: %v", err)
	}
	dir := t.TempDir()
	first, err := Write(spec, ref, filepath.Join(dir, "a.tar"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Write(spec, ref, filepath.Join(dir, "b.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatalf("two builds of the same inputs gave %s and %s", first, second)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.tar"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.tar"))
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same inputs wrote different tarballs")
	}
	if d, _ := os.ReadFile(filepath.Join(dir, "a.tar.digest")); strings.TrimSpace(string(d)) != first.String() {
		t.Fatalf("digest file holds %q, want %s", d, first)
	}

	tag, _ := name.NewTag(ref)
	img, err := tarball.ImageFromPath(filepath.Join(dir, "a.tar"), &tag)
	if err != nil {
		t.Fatalf("reading the tarball back: %v", err)
	}
	// docker-archive keeps the config and layers, not the manifest: the
	// image ID is what survives the trip.
	built, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	wantID, _ := built.ConfigName()
	if id, err := img.ConfigName(); err != nil || id != wantID {
		t.Fatalf("tarball's image ID %s (%v), want %s", id, err, wantID)
	}
	if d, _ := os.ReadFile(filepath.Join(dir, "a.tar.id")); strings.TrimSpace(string(d)) != wantID.String() {
		t.Fatalf("ID file holds %q, want %s", d, wantID)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cf.Config.User)
	}
	if want := []string{"/keyferry", "controller"}; !slices.Equal(cf.Config.Entrypoint, want) {
		t.Errorf("entrypoint %q, want %q", cf.Config.Entrypoint, want)
	}
	for k, want := range map[string]string{LabelSource: spec.Source, LabelRevision: spec.Revision, LabelVersion: version} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	if !cf.Created.Time.Equal(spec.Created) || cf.OS != "linux" {
		t.Errorf("created %v os %q, want %v linux", cf.Created.Time, cf.OS, spec.Created)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("want exactly one layer (empty base), got %d (%v)", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	// Every entry is root-owned and writable by its owner only, except the
	// nonroot user's home and the sticky /tmp; every timestamp is fixed.
	allowed := map[string]func(*tar.Header) bool{
		"home/nonroot/": func(h *tar.Header) bool { return h.Uid == Nonroot && h.Gid == Nonroot && h.Mode == 0o700 },
		"tmp/":          func(h *tar.Header) bool { return h.Uid == 0 && h.Mode == 0o1777 },
	}
	seen := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ok, special := allowed[h.Name]; special {
			if !ok(h) {
				t.Errorf("%s: uid %d gid %d mode %o", h.Name, h.Uid, h.Gid, h.Mode)
			}
		} else if h.Uid != 0 || h.Gid != 0 || h.Mode&0o022 != 0 {
			t.Errorf("%s: uid %d gid %d mode %o, want root-owned and not group/world-writable", h.Name, h.Uid, h.Gid, h.Mode)
		}
		if !h.ModTime.Equal(spec.Created) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, spec.Created)
		}
		data, _ := io.ReadAll(tr)
		seen[h.Name] = data
		if h.Name == "keyferry" && (h.Typeflag != tar.TypeReg || h.Mode != 0o755) {
			t.Errorf("/keyferry: type %c mode %o, want a 0755 regular file", h.Typeflag, h.Mode)
		}
	}
	for _, want := range []string{"keyferry", "etc/passwd", "etc/group", "etc/ssl/certs/ca-certificates.crt"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("/%s is missing from the image", want)
		}
	}
	if !strings.Contains(string(seen["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot entry:\n%s", seen["etc/passwd"])
	}
	if !strings.Contains(string(seen["etc/group"]), "nonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot entry:\n%s", seen["etc/group"])
	}

	// The binary in the image runs and reports the version it was built with.
	bin := filepath.Join(t.TempDir(), "keyferry")
	if err := os.WriteFile(bin, seen["keyferry"], 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "keyferry "+version {
		t.Fatalf("`keyferry version` from the image: %q (%v)", out, err)
	}
}

func TestDifferentRevisionGivesDifferentDigest(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tool")
	// Any ELF file will do; the test binary itself is one.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	digest := func(rev string) string {
		img, err := Build(Spec{Binary: bin, Revision: rev, Created: time.Unix(0, 0).UTC()})
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	if digest("a") == digest("b") {
		t.Fatal("the revision label does not reach the image")
	}
	if digest("a") != digest("a") {
		t.Fatal("the same inputs gave different digests")
	}
}

func TestRefusesANonExecutable(t *testing.T) {
	f := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(Spec{Binary: f}); err == nil {
		t.Fatal("a shell script was accepted as the image's binary")
	}
}
