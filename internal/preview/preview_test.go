package preview

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/render"
)

// FuzzRenderManifest feeds fuzzed manifests through what keyferry render
// does with them (split, decode strictly, compile, render): no panic, and
// an error for anything that does not render.
func FuzzRenderManifest(f *testing.F) {
	for _, p := range []string{
		"../../examples/quickstart/quickstart.yaml",
		"../../examples/distributor/20-clusterexternalsecret.yaml",
		"../../cmd/keyferry/testdata/render/templatefrom.yaml",
		"../../cmd/keyferry/testdata/render/pushsecret.yaml",
	} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	data := map[string][]byte{"username": []byte("u"), "password": []byte("p"), "host": []byte("h"), "token": []byte("t"), "db": []byte(`{"host":"h"}`)}
	reader := &fileReader{objects: map[string]client.Object{}}
	e := &engine.Engine{APIReader: reader, Templates: render.NewSandbox(render.Limits{Timeout: 250 * time.Millisecond, MaxSteps: 10_000, MaxCostly: 1})}
	f.Fuzz(func(t *testing.T, manifest string) {
		if len(manifest) > 16<<10 || strings.Contains(manifest, "gen") || strings.Contains(manifest, "Cert") {
			return // key generation is bounded by count, not time; see render's fuzz targets
		}
		docs, err := splitDocuments("fuzz", []byte(manifest))
		if err != nil {
			return
		}
		targets, err := parseTargets("fuzz", docs, "default")
		if err != nil {
			return
		}
		for _, tg := range targets {
			if s, err := renderOne(context.Background(), e, tg, data); err == nil && s == nil {
				t.Fatalf("%s: no Secret and no error", tg.what)
			}
		}
	})
}
