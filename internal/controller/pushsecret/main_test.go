package pushsecret_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
	kubeprovider "github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/provider/vault"
	"github.com/keyferry/keyferry/internal/testing/maintb"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	"github.com/keyferry/keyferry/internal/testing/testserver/vaultserver"
)

// canary is part of every value the tests push: it must never appear in the
// operator's logs, an Event or a status.
const canary = "kf-push-canary-5e1c"

// vaultServerAddr is the server the manifests name (ESO's examples).
const vaultServerAddr = "my.vault.server:8200"

var (
	env      *testenv.Env
	vaultSrv *vaultserver.Server
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) (code int) {
	flag.Parse()
	if fuzzing() {
		// FuzzCompile needs no servers; each fuzz worker runs TestMain.
		return m.Run()
	}
	tb := &maintb.TB{}
	defer tb.RunCleanups()
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(maintb.Failure); ok {
				fmt.Fprintln(os.Stderr, "starting the Vault dev server:", string(f))
				code = 1
				return
			}
			panic(r)
		}
	}()
	vaultSrv = vaultserver.StartWithOptions(tb, vaultserver.Options{RootToken: "root"})
	u, err := url.Parse(vaultSrv.Addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != vaultServerAddr {
			return nil, fmt.Errorf("test dialer: %s is not %s", addr, vaultServerAddr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, u.Host)
	}
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	reg.Register("kubernetes", kubeprovider.New(nil))
	reg.Register("vault", vault.NewWithOptions(vault.Options{DialContext: dial}))
	env, err = testenv.Start(testenv.Options{Registry: reg, Operator: func(o *operator.Options) {
		// The examples reach Vault at http://my.vault.server:8200.
		o.StorePolicy = provider.Policy{AllowInsecureHTTP: true}
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the test environment:", err)
		return 1
	}
	defer env.Stop()
	return m.Run()
}

// noLeak fails when the canary is in the operator's logs, in an Event of
// the namespace, or in a PushSecret's status.
func noLeak(t *testing.T, ns string) {
	t.Helper()
	env.AssertNoLeak(t, canary)
	ctx := context.Background()
	var evs eventsv1.EventList
	if err := env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var pss esv1alpha1.PushSecretList
	if err := env.Client.List(ctx, &pss, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []any{evs, pss} {
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), canary) {
			t.Fatalf("a pushed value appeared in an Event or a PushSecret of %s", ns)
		}
	}
}

// fuzzing says whether the binary runs (or is a worker of) go test -fuzz.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}
