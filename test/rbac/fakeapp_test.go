package rbac

import "fmt"

// fakeApp is a SecretStore "inline" of the fake provider holding api-key =
// value and an ExternalSecret "app" that syncs it into the Secret "app"
// under the key "key".
func fakeApp(value string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: inline
spec:
  provider:
    fake:
      data:
        - key: api-key
          value: %s
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: SecretStore, name: inline}
  target: {name: app}
  data:
    - secretKey: key
      remoteRef: {key: api-key}
`, value)
}
