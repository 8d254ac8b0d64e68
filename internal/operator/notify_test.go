package operator

import (
	"context"
	"reflect"
	"testing"

	"github.com/keyferry/keyferry/internal/engine"
)

// recorder is a changeNotifier that remembers what it was told.
type recorder struct{ got []engine.ObjectRef }

func (r *recorder) Notify(_ context.Context, ref engine.ObjectRef) { r.got = append(r.got, ref) }

func TestNotifyRoutesByKind(t *testing.T) {
	es, ss := &recorder{}, &recorder{}
	notify(context.Background(), map[string]changeNotifier{"ExternalSecret": es, "SecretSync": ss}, []string{
		"ExternalSecret/ns/app",
		"SecretSync/ns/sync",
		"ClusterExternalSecret//all", // no controller for this kind: dropped
		"ExternalSecret/app",         // not a subscriber: dropped
		"",
		"ExternalSecret/other/db",
	})
	if want := []engine.ObjectRef{{Kind: "ExternalSecret", Namespace: "ns", Name: "app"}, {Kind: "ExternalSecret", Namespace: "other", Name: "db"}}; !reflect.DeepEqual(es.got, want) {
		t.Errorf("ExternalSecret controller got %+v, want %+v", es.got, want)
	}
	if want := []engine.ObjectRef{{Kind: "SecretSync", Namespace: "ns", Name: "sync"}}; !reflect.DeepEqual(ss.got, want) {
		t.Errorf("SecretSync controller got %+v, want %+v", ss.got, want)
	}
}

func TestNotifyStopsWhenDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	es := &recorder{}
	notify(ctx, map[string]changeNotifier{"ExternalSecret": es}, []string{"ExternalSecret/ns/a", "ExternalSecret/ns/b"})
	if len(es.got) != 1 {
		t.Fatalf("after the context ended notify went on: %+v", es.got)
	}
}
