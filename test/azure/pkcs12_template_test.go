package azure

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyferry/keyferry/internal/testing/testenv"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// A Key Vault certificate whose policy's content type is
// application/x-pkcs12 keeps its certificate and key in the secret of the
// same name as a password-less PKCS#12 archive in base64. ESO's users turn
// it into a kubernetes.io/tls Secret with decodingStrategy: Base64 and the
// pkcs12cert / pkcs12key helpers; the same manifest works on keyferry,
// against the Key Vault server, through the operator's template sandbox.
func TestPKCS12CertificateBecomesTLSSecret(t *testing.T) {
	cert, key := selfSigned(t, "web-"+canary)
	pfx, err := gopkcs12.LegacyDES.Encode(key, cert, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	srv.SetSecret("web-cert", base64.StdEncoding.EncodeToString(pfx), kvserver.WithContentType("application/x-pkcs12"))

	env.Apply(t, "", exampleDir)
	env.WaitStoreReady(t, "", "azure-keyvault-cluster-store")
	env.Apply(t, "jenkins", `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: web-tls
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: azure-keyvault-cluster-store
    kind: ClusterSecretStore
  target:
    template:
      type: kubernetes.io/tls
      engineVersion: v2
      data:
        tls.crt: '{{ .pfx | pkcs12cert }}'
        tls.key: '{{ .pfx | pkcs12key }}'
        keystore.p12: '{{ fullPemToPkcs12Pass (.pfx | pkcs12cert) (.pfx | pkcs12key) "changeit" | b64dec }}'
  data:
    - secretKey: pfx
      remoteRef:
        key: secret/web-cert
        decodingStrategy: Base64
`)
	env.WaitReady(t, "jenkins", "web-tls", metav1.ConditionTrue, synced)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s := env.WaitSecret(t, "jenkins", "web-tls", testenv.HasData(map[string]string{
		corev1.TLSCertKey:       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		corev1.TLSPrivateKeyKey: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}))
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type = %s, want %s", s.Type, corev1.SecretTypeTLS)
	}
	_, got, _, err := gopkcs12.DecodeChain(s.Data["keystore.p12"], "changeit")
	if err != nil || !got.Equal(cert) {
		t.Fatalf("keystore.p12 does not hold the certificate (decode error %v)", err)
	}
	assertNoLeak(t, "jenkins", "web-tls")
}

// A template that cannot open the archive (a wrong password) fails its
// ExternalSecret with TemplateFailed and the helper's fixed message; the
// archive never reaches the status.
func TestPKCS12WrongPasswordIsTemplateFailed(t *testing.T) {
	cert, key := selfSigned(t, "api-"+canary)
	pfx, err := gopkcs12.Modern.Encode(key, cert, nil, "right-"+canary)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetSecret("api-cert", base64.StdEncoding.EncodeToString(pfx), kvserver.WithContentType("application/x-pkcs12"))

	env.Apply(t, "", exampleDir)
	env.WaitStoreReady(t, "", "azure-keyvault-cluster-store")
	env.Apply(t, "jenkins", `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: api-tls
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: azure-keyvault-cluster-store
    kind: ClusterSecretStore
  target:
    template:
      engineVersion: v2
      data:
        tls.key: '{{ .pfx | b64dec | pkcs12keyPass "wrong" }}'
  data:
    - secretKey: pfx
      remoteRef:
        key: secret/api-cert
`)
	es := env.WaitReady(t, "jenkins", "api-tls", metav1.ConditionFalse, "TemplateFailed")
	c := testenv.ReadyCondition(es)
	if !strings.Contains(c.Message, "calling pkcs12keyPass failed: the PKCS#12 archive cannot be decrypted with the given password") {
		t.Errorf("Ready message = %q, want the helper's message", c.Message)
	}
	assertNoLeak(t, "jenkins", "api-tls")
}
