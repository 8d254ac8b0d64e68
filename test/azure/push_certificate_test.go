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
// the test creates source-certificate with a real certificate). Both name
// the same PushSecret and certificate: the PKCS#12 example imports a
// password-less PKCS#12 file as certificate my-azkv-cert-name, tagged
// managed-by: external-secrets; the PEM example, applied over it with a PEM
// certificate and key in the source, turns them into PKCS#12 with its
// template's fullPemToPkcs12 and imports them as the certificate's next
// version; deleting the PushSecret (deletionPolicy: Delete) deletes it.
func TestPushESOCertificateExamplesImportTheCertificate(t *testing.T) {
	const ns, name, certName = "default", "pushsecret-example", "my-azkv-cert-name"
	ctx := context.Background()
	registerPushExampleCredentials(t)
	env.Apply(t, ns, filepath.Join(pushExampleDir, "10-credentials.yaml"))
	env.Apply(t, ns, filepath.Join(pushExampleDir, "11-secretstore.yaml"))
	env.WaitStoreReady(t, ns, "azure-store")
	waitImported := func(t *testing.T, cert *x509.Certificate) {
		t.Helper()
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
	}

	first, firstKey := selfSigned(t, "push-p12")
	p12, err := pkcs12.Passwordless.Encode(firstKey, first, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "source-certificate"}, Data: map[string][]byte{"cert.p12": p12}}
	if err := env.Client.Create(ctx, src); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.IgnoreNotFound(env.Client.Delete(ctx, src)) })

	t.Run("PKCS#12", func(t *testing.T) {
		env.Apply(t, ns, filepath.Join(pushExampleDir, "40-pushsecret-certificate-p12.yaml"))
		waitPushReady(t, ns, name, corev1.ConditionTrue, pushsecret.ReasonSynced)
		waitImported(t, first)
	})

	t.Run("PEM through fullPemToPkcs12", func(t *testing.T) {
		second, secondKey := selfSigned(t, "push-pem")
		bundle := pemBundle(t, second, secondKey)
		keyPEM := bundle[:strings.Index(bundle, "-----BEGIN CERTIFICATE-----")]
		setSourceData(t, ns, "source-certificate", map[string][]byte{
			"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: second.Raw}),
			"tls.key": []byte(keyPEM),
		})
		env.Apply(t, ns, filepath.Join(pushExampleDir, "50-pushsecret-certificate-pem.yaml"))
		waitImported(t, second)
		waitPushReady(t, ns, name, corev1.ConditionTrue, pushsecret.ReasonSynced)
		if o, _ := srv.Object(kvserver.KindCertificate, certName); o.Versions != 2 {
			t.Fatalf("%d versions of %s, want 2", o.Versions, certName)
		}
	})

	t.Run("deletionPolicy Delete", func(t *testing.T) {
		deletePushSecrets(t, ns, name)
		if _, ok := srv.Object(kvserver.KindCertificate, certName); ok || !srv.IsDeleted(kvserver.KindCertificate, certName) {
			t.Fatal("deletionPolicy Delete did not delete the pushed certificate")
		}
	})
}
