// Package chart renders and lints keyferry's Helm chart (deploy/chart/keyferry)
// with the helm pinned in go.mod (`go tool helm`), for the chart tests in
// this directory and the RBAC tests in test/rbac, which apply what the chart
// renders to a real API server.
package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/keyferry/keyferry/internal/manifest"
)

// Dir is the chart's directory, relative to the repository root.
const Dir = "deploy/chart/keyferry"

// EnvHelm names a helm binary to use instead of `go tool helm`.
const EnvHelm = "KEYFERRY_HELM"

// EnvChart names a chart directory to render instead of Dir (e.g. a copy
// with a rule removed, to check that the RBAC tests notice).
const EnvChart = "KEYFERRY_CHART_DIR"

// Path returns the directory of the chart under test: $KEYFERRY_CHART_DIR,
// or Dir under root.
func Path(root string) string {
	if d := os.Getenv(EnvChart); d != "" {
		return d
	}
	return filepath.Join(root, Dir)
}

// Options describe one rendering.
type Options struct {
	// Release and Namespace default to "keyferry" and "keyferry-system".
	Release, Namespace string
	// Values are the user's values (a values file).
	Values map[string]any
	// APIVersions are extra API versions the cluster is said to serve
	// (helm template --api-versions), e.g. "monitoring.coreos.com/v1/ServiceMonitor".
	APIVersions []string
}

// Helm returns the path of the helm binary: $KEYFERRY_HELM, or the one
// `go tool helm` builds from go.mod's pinned version (cached by the go
// command after the first build).
func Helm(ctx context.Context, root string) (string, error) {
	if p := os.Getenv(EnvHelm); p != "" {
		return p, nil
	}
	helmOnce.Do(func() {
		cmd := exec.CommandContext(ctx, "go", "tool", "-n", "helm")
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmErr = fmt.Errorf("go tool -n helm: %w\n%s", err, stderr.String())
			return
		}
		helmPath = strings.TrimSpace(string(out))
	})
	return helmPath, helmErr
}

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// Template renders the chart as `helm template` does and returns its
// objects. Rendering errors (a failed schema check, a `fail` in a
// template) are returned with helm's message.
func Template(ctx context.Context, root string, opts Options) ([]*unstructured.Unstructured, error) {
	out, err := TemplateRaw(ctx, root, opts)
	if err != nil {
		return nil, err
	}
	objs, err := manifest.Parse(out)
	if err != nil {
		return nil, fmt.Errorf("parsing the rendered chart: %w", err)
	}
	return objs, nil
}

// TemplateRaw renders the chart and returns helm's output.
func TemplateRaw(ctx context.Context, root string, opts Options) ([]byte, error) {
	if opts.Release == "" {
		opts.Release = "keyferry"
	}
	if opts.Namespace == "" {
		opts.Namespace = "keyferry-system"
	}
	args := []string{"template", opts.Release, Path(root), "--namespace", opts.Namespace}
	for _, v := range opts.APIVersions {
		args = append(args, "--api-versions", v)
	}
	valuesArgs, cleanup, err := valuesFile(opts.Values)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return runHelm(ctx, root, append(args, valuesArgs...)...)
}

// Lint runs `helm lint --strict` on the chart with values.
func Lint(ctx context.Context, root string, values map[string]any) ([]byte, error) {
	valuesArgs, cleanup, err := valuesFile(values)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	return runHelm(ctx, root, append([]string{"lint", "--strict", Path(root)}, valuesArgs...)...)
}

func runHelm(ctx context.Context, root string, args ...string) ([]byte, error) {
	helm, err := Helm(ctx, root)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, helm, args...)
	cmd.Dir = root
	// A clean helm home: no user repositories, plugins or caches.
	home, err := os.MkdirTemp("", "keyferry-helm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w\n%s%s", args[0], err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

// valuesFile writes values to a temporary file and returns the flags that
// pass it to helm.
func valuesFile(values map[string]any) ([]string, func(), error) {
	if len(values) == 0 {
		return nil, func() {}, nil
	}
	b, err := yaml.Marshal(values)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding values: %w", err)
	}
	f, err := os.CreateTemp("", "keyferry-values-*.yaml")
	if err != nil {
		return nil, nil, err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nil, err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return nil, nil, err
	}
	return []string{"--values", f.Name()}, func() { os.Remove(f.Name()) }, nil
}

// Find returns the rendered objects of a kind.
func Find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// Args returns the arguments of the operator container of the rendered
// Deployment.
func Args(objs []*unstructured.Unstructured) ([]string, error) {
	deps := Find(objs, "Deployment")
	if len(deps) != 1 {
		return nil, fmt.Errorf("the chart renders %d Deployments, want 1", len(deps))
	}
	containers, _, err := unstructured.NestedSlice(deps[0].Object, "spec", "template", "spec", "containers")
	if err != nil || len(containers) == 0 {
		return nil, fmt.Errorf("the Deployment has no containers (%v)", err)
	}
	c, _ := containers[0].(map[string]any)
	args, _, err := unstructured.NestedStringSlice(c, "args")
	if err != nil {
		return nil, fmt.Errorf("container args: %w", err)
	}
	return args, nil
}
