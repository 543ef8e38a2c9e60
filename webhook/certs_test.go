package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/util/cert"
)

// chartObjects are what the chart creates: an empty Secret and the configuration with an empty
// caBundle.
func chartObjects() (*corev1.Secret, *admissionregistrationv1.MutatingWebhookConfiguration) {
	url := "https://127.0.0.1:8443/mutate/pods"
	none := admissionregistrationv1.SideEffectClassNone
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "podmedic", Name: "podmedic-webhook-tls"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "podmedic"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "pods.podmedic.io", SideEffects: &none,
				AdmissionReviewVersions: []string{"v1"}, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url}}}}
}

// verify checks that the served certificate is valid for 127.0.0.1 at now under the
// configuration's caBundle, and returns the bundle's CAs.
func verify(t *testing.T, c *Certs, client *fake.Clientset, now time.Time) []*x509.Certificate {
	t.Helper()
	served, err := c.GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(served.Certificate[0])
	require.NoError(t, err)
	cfg, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), "podmedic", metav1.GetOptions{})
	require.NoError(t, err)
	bundle := cfg.Webhooks[0].ClientConfig.CABundle
	cas, err := cert.ParseCertsPEM(bundle)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca)
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1", CurrentTime: now})
	require.NoError(t, err)
	return cas
}

// TestCertsIssueRenewRotate: from the chart's empty Secret and caBundle, a CA and a serving
// certificate are issued and the caBundle set; nothing changes while they are fresh; the
// serving certificate is renewed with two thirds of its life gone, and a CA near its end is
// rotated with the old one kept in the bundle.
func TestCertsIssueRenewRotate(t *testing.T) {
	secret, cfg := chartObjects()
	client := fake.NewClientset(secret, cfg)
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	c, err := NewCerts(CertOptions{Client: client, Namespace: "podmedic", Secret: "podmedic-webhook-tls", Config: "podmedic",
		DNSNames: []string{"podmedic.podmedic.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		CAValidity: 300 * 24 * time.Hour, CertValidity: 30 * 24 * time.Hour, Now: func() time.Time { return now }})
	require.NoError(t, err)
	_, err = c.GetCertificate(nil)
	require.Error(t, err, "nothing to serve before the first Ensure")

	ctx := context.Background()
	require.NoError(t, c.Ensure(ctx))
	cas := verify(t, c, client, now)
	require.Len(t, cas, 1)
	first, _ := c.GetCertificate(nil)

	client.ClearActions()
	now = now.Add(10 * 24 * time.Hour)
	require.NoError(t, c.Ensure(ctx))
	for _, a := range client.Actions() {
		assert.Equal(t, "get", a.GetVerb(), "nothing written while fresh: %v", a)
	}

	now = now.Add(11 * 24 * time.Hour) // 21 of 30 days
	require.NoError(t, c.Ensure(ctx))
	renewed, _ := c.GetCertificate(nil)
	assert.NotEqual(t, first.Certificate[0], renewed.Certificate[0], "serving certificate renewed")
	assert.Equal(t, cas[0].Raw, verify(t, c, client, now)[0].Raw, "by the same CA")

	now = now.Add(200 * 24 * time.Hour) // past two thirds of the CA's 300 days
	require.NoError(t, c.Ensure(ctx))
	rotated := verify(t, c, client, now)
	require.Len(t, rotated, 2, "new CA and the old one until it expires")
	assert.Equal(t, cas[0].Raw, rotated[1].Raw)

	now = now.Add(100 * 24 * time.Hour) // the old CA has expired
	require.NoError(t, c.Ensure(ctx))
	assert.Len(t, verify(t, c, client, now), 1, "the expired CA left the bundle")

	// A second replica uses what the first issued.
	other, err := NewCerts(CertOptions{Client: client, Namespace: "podmedic", Secret: "podmedic-webhook-tls", Config: "podmedic",
		DNSNames: []string{"podmedic.podmedic.svc"}, IPs: []net.IP{net.ParseIP("127.0.0.1")},
		CAValidity: 300 * 24 * time.Hour, CertValidity: 30 * 24 * time.Hour, Now: func() time.Time { return now }})
	require.NoError(t, err)
	client.ClearActions()
	require.NoError(t, other.Ensure(ctx))
	mine, _ := c.GetCertificate(nil)
	theirs, _ := other.GetCertificate(nil)
	assert.Equal(t, mine.Certificate[0], theirs.Certificate[0])
	for _, a := range client.Actions() {
		assert.Equal(t, "get", a.GetVerb())
	}
}

func TestCertsNeedTheirObjects(t *testing.T) {
	_, err := NewCerts(CertOptions{Client: fake.NewClientset(), Namespace: "podmedic", Secret: "s", Config: "c"})
	require.ErrorContains(t, err, "no DNS name or IP")
	c, err := NewCerts(CertOptions{Client: fake.NewClientset(), Namespace: "podmedic", Secret: "s", Config: "c", DNSNames: []string{"x"}})
	require.NoError(t, err)
	require.ErrorContains(t, c.Ensure(context.Background()), "read Secret podmedic/s (the chart creates it)")
}
