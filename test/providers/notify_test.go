package providers

import (
	"testing"

	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// A change one ExternalSecret's refresh finds in a store reaches every other
// ExternalSecret reading that value at once, not at its own next refresh: the
// fetch layer reports the change, the operator hands it to the ExternalSecret
// controller (Reconciler.Notify), which reconciles the others.
func TestVaultChangeSeenByOneExternalSecretReachesTheOthers(t *testing.T) {
	ns := env.Namespace(t)
	path := ns + "/shared"
	vaultSrv.PutKV(t, "secret", 2, path, map[string]any{"password": "v1-" + canary})
	env.Apply(t, ns, tokenStore(t, ns, "store")+
		vaultExternalSecret("fast", path, "password", "1s")+
		vaultExternalSecret("slow", path, "password", "1h"))
	deleteOnCleanup(t, ns, "fast")
	deleteOnCleanup(t, ns, "slow")
	env.WaitSecret(t, ns, "fast", testenv.HasData(map[string]string{"value": "v1-" + canary}))
	env.WaitSecret(t, ns, "slow", testenv.HasData(map[string]string{"value": "v1-" + canary}))

	vaultSrv.PutKV(t, "secret", 2, path, map[string]any{"password": "v2-" + canary})
	env.WaitSecret(t, ns, "fast", testenv.HasData(map[string]string{"value": "v2-" + canary}))
	// "slow" refreshes only hourly: only the notification can bring v2 now.
	env.WaitSecret(t, ns, "slow", testenv.HasData(map[string]string{"value": "v2-" + canary}))
	assertNoLeak(t, ns, "fast", "slow")
}
