package azure

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// ESO's two "Pushing to a Certificate" examples, their PushSecrets applied
// unchanged (their source Secrets hold placeholders that are not base64:
// the test creates source-certificate with a real certificate), one after
// the other (both name the same PushSecret and certificate): a password-less
// PKCS#12 file, and a PEM certificate and key that the PushSecret's
// template turns into PKCS#12 with fullPemToPkcs12, are each imported as
// certificate my-azkv-cert-name, tagged managed-by: external-secrets;
// deleting the PushSecret (deletionPolicy: Delete) deletes it.
func TestPushESOCertificateExamplesImportTheCertificate(t *testing.T) {
	const ns, name, certName = "default", "pushsecret-example", "my-azkv-cert-name"
	ctx := context.Background()
	registerPushExampleCredentials(t)
	env.Apply(t, ns, filepath.Join(pushExampleDir, "10-credentials.yaml"))
	env.Apply(t, ns, filepath.Join(pushExampleDir, "11-secretstore.yaml"))
	env.WaitStoreReady(t, ns, "azure-store")

	for _, tt := range []struct {
		name, file string
		source     func(t *testing.T, cert *x509.Certificate, key any) map[string][]byte
	}{
		{"PKCS#12", "40-pushsecret-certificate-p12.yaml", func(t *testing.T, cert *x509.Certificate, key any) map[string][]byte {
			p12, err := pkcs12.Passwordless.Encode(key, cert, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			return map[string][]byte{"cert.p12": p12}
		}},
		{"PEM through fullPemToPkcs12", "50-pushsecret-certificate-pem.yaml", func(t *testing.T, cert *x509.Certificate, _ any) map[string][]byte {
			return nil // set below: pemBundle needs the typed key
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cert, key := selfSigned(t, "push-"+tt.file[:2])
			data := tt.source(t, cert, key)
			if data == nil {
				bundle := pemBundle(t, cert, key)
				data = map[string][]byte{
					"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}),
					"tls.key": []byte(bundle[:strings.Index(bundle, "-----BEGIN CERTIFICATE-----")]),
				}
			}
			src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "source-certificate"}, Data: data}
			if err := env.Client.Create(ctx, src); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				deletePushSecrets(t, ns, name)
				_ = client.IgnoreNotFound(env.Client.Delete(ctx, src))
				// The name is reused by the next example.
				srv.Purge(kvserver.KindCertificate, certName)
			})

			env.Apply(t, ns, filepath.Join(pushExampleDir, tt.file))
			waitPushReady(t, ns, name, corev1.ConditionTrue, pushsecret.ReasonSynced)
			testenv.Eventually(t, "certificate "+certName+" imported", func(context.Context) (bool, string) {
				o, ok := srv.Object(kvserver.KindCertificate, certName)
				switch {
				case !ok:
					return false, "not imported"
				case !bytes.Equal(o.CER, cert.Raw):
					return false, "another certificate"
				case o.Tags[provider.ManagedByKey] != provider.ManagedByValue:
					return false, "not tagged managed-by: external-secrets"
				}
				return true, ""
			})
			deletePushSecrets(t, ns, name)
			if _, ok := srv.Object(kvserver.KindCertificate, certName); ok || !srv.IsDeleted(kvserver.KindCertificate, certName) {
				t.Fatal("deletionPolicy Delete did not delete the pushed certificate")
			}
		})
	}
}
