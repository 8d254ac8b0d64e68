//go:build linux

package drills

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// malformedCanary is in every malformed answer; it must never reach a
// status, an Event or the operator's log.
const malformedCanary = "CANARY-malformed-7f3a9c"

// malformedCase is one kind of malformed answer and the reason the
// ExternalSecret must get for it.
type malformedCase struct {
	name   string
	answer func(w http.ResponseWriter)
	reason string
}

var malformedCases = []malformedCase{
	{"invalid JSON", func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value": "` + malformedCanary + `", `))
	}, "ProviderBadResponse"},
	{"HTML error page with 200", func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<html><body><h1>502 Bad Gateway</h1><p>` + malformedCanary + `</p></body></html>`))
	}, "ProviderBadResponse"},
	{"huge body (9 MiB)", func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value": "`))
		chunk := []byte(strings.Repeat(malformedCanary, 1<<10))
		for n := 0; n < 9<<20; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(`"}`))
	}, "ProviderBadResponse"},
	{"body cut short", func(w http.ResponseWriter) {
		body := `{"value": "` + malformedCanary + `"}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)+100))
		_, _ = w.Write([]byte(body))
		// Returning with fewer bytes than announced makes the server
		// close the connection: the client reads an unexpected EOF.
	}, "ProviderUnreachable"},
	{"value of the wrong type (empty array)", func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"value": [], "note": "` + malformedCanary + `"}`))
	}, "RemoteSecretNotFound"},
}

// A backend that answers with malformed bodies (invalid JSON, an HTML page
// with status 200, a body over the provider's limit, a body cut short, a
// value of the wrong type) leaves every existing Secret exactly as it was,
// gives the ExternalSecret Ready=False with a specific reason whose
// message, like the Events and the operator's log, holds nothing of the
// answer, and does not crash the operator.
func TestMalformedBackendAnswers(t *testing.T) {
	w := &workload{n: len(malformedCases), d: 1, k: len(malformedCases), refresh: time.Hour, storePerES: true}
	w.create(t)
	o := w.observe(t)
	p := startOperator(t, "keyferry", w.ns)
	o.waitRight(t, w.n, killSyncTimeout)
	w.waitAllReady(t)

	before := map[string]string{}
	for i := 0; i < w.n; i++ {
		before[w.esName(i)] = env.GetSecret(t, w.ns, w.esName(i)).ResourceVersion
	}
	callsBefore := w.be.calls.Load()
	w.be.setFault(func(rw http.ResponseWriter, r *http.Request, _ string) bool {
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/s%d/", &i); err != nil || i < 0 || i >= len(malformedCases) {
			return false
		}
		malformedCases[i].answer(rw)
		return true
	})
	for i := 0; i < w.n; i++ {
		env.ForceSync(t, w.ns, w.esName(i))
	}
	for i, c := range malformedCases {
		name := w.esName(i)
		es := waitFailed(t, w.ns, name)
		cond := testenv.ReadyCondition(es)
		t.Logf("FIGURE malformed: %s -> Ready=%s %s: %s", c.name, cond.Status, cond.Reason, cond.Message)
		if cond.Reason != c.reason {
			t.Errorf("%s: reason %s, want %s", c.name, cond.Reason, c.reason)
		}
		if strings.Contains(cond.Message, malformedCanary) {
			t.Errorf("%s: the condition's message quotes the answer", c.name)
		}
		if s := env.GetSecret(t, w.ns, name); s.ResourceVersion != before[name] {
			t.Errorf("%s: the Secret was written (resourceVersion %s, was %s)", c.name, s.ResourceVersion, before[name])
		}
		evs, err := env.Events(context.Background(), w.ns, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if strings.Contains(ev.Note, malformedCanary) {
				t.Errorf("%s: Event %s quotes the answer", c.name, ev.Reason)
			}
		}
	}
	p.assertAlive(t)
	if strings.Contains(p.logs(), malformedCanary) {
		t.Errorf("the operator logged part of a malformed answer")
	}
	o.assertClean(t)
	t.Logf("FIGURE malformed: %d backend calls for %d forced syncs of malformed answers", w.be.calls.Load()-callsBefore, w.n)
}

// waitFailed waits until the ExternalSecret reports Ready=False after a
// sync that started after its force-sync annotation.
func waitFailed(t *testing.T, ns, name string) *esv1.ExternalSecret {
	t.Helper()
	es := &esv1.ExternalSecret{}
	testenv.Eventually(t, "ExternalSecret "+name+" Ready=False", func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, es); err != nil {
			return false, err.Error()
		}
		c := testenv.ReadyCondition(es)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == metav1.ConditionFalse, fmt.Sprintf("Ready=%s %s", c.Status, c.Reason)
	})
	return es
}
