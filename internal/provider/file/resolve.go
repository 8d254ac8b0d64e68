package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/keyferry/keyferry/internal/provider"
)

// ErrEscapesRoot is returned for a key that names something outside the
// store's root: a ".." segment, an absolute key, or a symbolic link whose
// target is outside the root (or absolute). It wraps provider.ErrForbidden.
var ErrEscapesRoot error = escapesRootError{}

type escapesRootError struct{}

func (escapesRootError) Error() string { return "path escapes the store root" }
func (escapesRootError) Unwrap() error { return provider.ErrForbidden }

// maxLinks bounds the symbolic links followed for one key, as the kernel
// does (ELOOP).
const maxLinks = 40

// checkKey refuses keys that are not a relative path inside the root.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: the key is empty", provider.ErrNotFound)
	}
	if strings.HasPrefix(key, "/") || filepath.IsAbs(key) {
		return ErrEscapesRoot
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == ".." {
			return ErrEscapesRoot
		}
	}
	if strings.ContainsRune(key, 0) {
		return fmt.Errorf("%w: the key holds a NUL byte", provider.ErrNotFound)
	}
	return nil
}

// resolve follows key inside root, component by component, and returns the
// slash-separated path relative to root that it names, with every symbolic
// link resolved. Links whose targets stay inside the root are followed, as
// the Kubernetes atomic writer needs (name -> ..data/name, ..data ->
// ..2024_01_01_...); a link that leads outside the root, or is absolute,
// gives ErrEscapesRoot. A missing component gives an error wrapping
// fs.ErrNotExist.
//
// resolve only classifies; opening goes through an os.Root, which refuses
// to leave the root even if a link changes between resolve and open.
func resolve(root, key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	var (
		resolved []string
		pending  = strings.Split(key, "/")
		links    int
	)
	for len(pending) > 0 {
		seg := pending[0]
		pending = pending[1:]
		switch seg {
		case "", ".":
			continue
		case "..":
			// Only a link's target brings ".." here.
			if len(resolved) == 0 {
				return "", ErrEscapesRoot
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		full := filepath.Join(root, filepath.FromSlash(path.Join(append(resolved, seg)...)))
		fi, err := os.Lstat(full)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(pending) > 0 && !fi.IsDir() {
				return "", &fs.PathError{Op: "resolve", Path: key, Err: fs.ErrNotExist}
			}
			resolved = append(resolved, seg)
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("resolving %q: too many levels of symbolic links", key)
		}
		target, err := os.Readlink(full)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) || strings.HasPrefix(target, "/") {
			return "", ErrEscapesRoot
		}
		pending = append(strings.Split(filepath.ToSlash(target), "/"), pending...)
	}
	return path.Join(resolved...), nil
}

// isNotFound says whether err means the file is not there.
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}
