package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/podmedic/podmedic/internal/retry"
)

// The webhook's TLS is self-managed: podmedic keeps a CA and a serving certificate in a Secret
// the chart creates empty, serves the certificate through tls.Config.GetCertificate (so a
// renewal needs no restart), and keeps the CA in the caBundle of its own
// MutatingWebhookConfiguration. Both are reached by name only (RBAC resourceNames). Replicas
// share the Secret: each change is an update on the resourceVersion read, so two replicas
// that renew at once agree on the winner's certificate.
//
// Why not cert-manager: podmedic must work in clusters without it, and a webhook that fails
// open (failurePolicy Ignore) would silently stop applying overrides if its certificate were
// never issued; the chart offers cert-manager as an option (--webhook-cert-dir).

// Secret keys.
const (
	KeyCACert  = "ca.crt"
	KeyCAKey   = "ca.key"
	KeyTLSCert = "tls.crt"
	KeyTLSKey  = "tls.key"
)

// Defaults of CertOptions.
const (
	DefaultCAValidity   = 5 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	DefaultCertCheck    = time.Hour
)

// CertOptions configure Certs.
type CertOptions struct {
	Client kubernetes.Interface
	// Namespace and Secret name the Secret that holds the CA and the serving certificate.
	Namespace, Secret string
	// Config names the MutatingWebhookConfiguration whose webhooks' caBundle podmedic keeps.
	Config string
	// DNSNames and IPs the serving certificate is valid for (the Service's names:
	// podmedic.podmedic.svc; 127.0.0.1 when the API server calls a URL on loopback).
	DNSNames []string
	IPs      []net.IP
	// CAValidity and CertValidity are the lifetimes of new certificates; each is renewed
	// when less than a third of its life is left. A renewed CA is added to the caBundle
	// next to the old one until the old one expires.
	CAValidity, CertValidity time.Duration
	Now                      func() time.Time
	Logger                   *zap.Logger
}

// Certs keeps the webhook's certificate.
type Certs struct {
	o CertOptions

	mu     sync.RWMutex
	served *tls.Certificate
}

// NewCerts returns a certificate keeper; Ensure or Run makes it serve.
func NewCerts(o CertOptions) (*Certs, error) {
	if o.Client == nil || o.Namespace == "" || o.Secret == "" || o.Config == "" {
		return nil, errors.New("webhook certificates: Client, Namespace, Secret and Config are required")
	}
	if len(o.DNSNames) == 0 && len(o.IPs) == 0 {
		return nil, errors.New("webhook certificates: no DNS name or IP to certify")
	}
	if o.CAValidity <= 0 {
		o.CAValidity = DefaultCAValidity
	}
	if o.CertValidity <= 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Certs{o: o}, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *Certs) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.served == nil {
		return nil, errors.New("webhook certificate not issued yet")
	}
	return c.served, nil
}

// Run ensures the certificate now and every interval until ctx ends, retrying failures with
// backoff; it returns once ctx ends.
func (c *Certs) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultCertCheck
	}
	for ctx.Err() == nil {
		_ = retry.Until(ctx, retry.Exponential(time.Second, time.Minute), func(ctx context.Context) (bool, error) {
			if err := c.Ensure(ctx); err != nil {
				c.o.Logger.Warn("webhook certificate: not ensured yet; retrying", zap.Error(err))
				return false, nil
			}
			return true, nil
		})
		retry.Sleep(ctx, interval)
	}
}

// material is what the Secret holds, parsed.
type material struct {
	cas    []*x509.Certificate // newest first
	caKey  *ecdsa.PrivateKey
	leaf   *x509.Certificate
	tlsKey []byte
	tlsPEM []byte
}

// Ensure makes the Secret hold a valid CA and serving certificate (issuing or renewing them
// as needed), serves the certificate, and puts the CA in the webhook configuration's
// caBundle.
func (c *Certs) Ensure(ctx context.Context) error {
	secrets := c.o.Client.CoreV1().Secrets(c.o.Namespace)
	for range 5 {
		s, err := secrets.Get(ctx, c.o.Secret, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read Secret %s/%s (the chart creates it): %w", c.o.Namespace, c.o.Secret, err)
		}
		m := parse(s.Data)
		next, changed, err := c.renew(m)
		if err != nil {
			return err
		}
		if changed {
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			if err := next.encode(s.Data); err != nil {
				return err
			}
			if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{FieldManager: "podmedic"}); apierrors.IsConflict(err) {
				continue // another replica renewed: use its certificate
			} else if err != nil {
				return fmt.Errorf("write Secret %s/%s: %w", c.o.Namespace, c.o.Secret, err)
			}
			c.o.Logger.Info("webhook certificate issued", zap.Time("not_after", next.leaf.NotAfter),
				zap.Time("ca_not_after", next.cas[0].NotAfter), zap.Int("cas_in_bundle", len(next.cas)))
		}
		served, err := tls.X509KeyPair(next.tlsPEM, next.tlsKey)
		if err != nil {
			return fmt.Errorf("webhook certificate: %w", err)
		}
		c.mu.Lock()
		c.served = &served
		c.mu.Unlock()
		bundle, err := cert.EncodeCertificates(next.cas...)
		if err != nil {
			return err
		}
		return c.putBundle(ctx, bundle)
	}
	return fmt.Errorf("Secret %s/%s changed by others 5 times in a row", c.o.Namespace, c.o.Secret)
}

// parse reads what it can of the Secret; anything missing or broken is issued anew.
func parse(data map[string][]byte) *material {
	m := &material{}
	if cas, err := cert.ParseCertsPEM(data[KeyCACert]); err == nil {
		m.cas = cas
	}
	if k, err := keyutil.ParsePrivateKeyPEM(data[KeyCAKey]); err == nil {
		m.caKey, _ = k.(*ecdsa.PrivateKey)
	}
	if certs, err := cert.ParseCertsPEM(data[KeyTLSCert]); err == nil && len(certs) > 0 {
		if _, err := tls.X509KeyPair(data[KeyTLSCert], data[KeyTLSKey]); err == nil {
			m.leaf, m.tlsPEM, m.tlsKey = certs[0], data[KeyTLSCert], data[KeyTLSKey]
		}
	}
	return m
}

func (m *material) encode(data map[string][]byte) error {
	caPEM, err := cert.EncodeCertificates(m.cas...)
	if err != nil {
		return err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(m.caKey)
	if err != nil {
		return err
	}
	data[KeyCACert], data[KeyCAKey], data[KeyTLSCert], data[KeyTLSKey] = caPEM, keyPEM, m.tlsPEM, m.tlsKey
	return nil
}

// due reports whether a certificate has less than a third of its life left at now.
func due(c *x509.Certificate, now time.Time) bool {
	life := c.NotAfter.Sub(c.NotBefore)
	return now.After(c.NotAfter.Add(-life / 3))
}

// renew returns the material to keep: m when it is valid for long enough, else with a new CA
// and/or serving certificate.
func (c *Certs) renew(m *material) (*material, bool, error) {
	now := c.o.Now()
	out := &material{cas: slices.Clone(m.cas), caKey: m.caKey, leaf: m.leaf, tlsPEM: m.tlsPEM, tlsKey: m.tlsKey}
	changed := false
	// Drop expired CAs from the bundle.
	out.cas = slices.DeleteFunc(out.cas, func(ca *x509.Certificate) bool { return now.After(ca.NotAfter) })
	if len(out.cas) == 0 || out.caKey == nil || !out.caKey.PublicKey.Equal(out.cas[0].PublicKey) || due(out.cas[0], now) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, false, err
		}
		ca, err := c.sign(&x509.Certificate{Subject: pkix.Name{CommonName: "podmedic-webhook-ca"}, IsCA: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, BasicConstraintsValid: true},
			c.o.CAValidity, &key.PublicKey, nil, key)
		if err != nil {
			return nil, false, err
		}
		// The old CA stays in the bundle until it expires: pods admitted meanwhile are
		// served by whichever replica still has the old certificate.
		if len(out.cas) > 0 && out.caKey != nil && out.caKey.PublicKey.Equal(out.cas[0].PublicKey) {
			out.cas = append([]*x509.Certificate{ca}, out.cas[0])
		} else {
			out.cas = []*x509.Certificate{ca}
		}
		out.caKey, out.leaf, changed = key, nil, true
	}
	if out.leaf == nil || due(out.leaf, now) || out.leaf.CheckSignatureFrom(out.cas[0]) != nil || !c.covers(out.leaf) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, false, err
		}
		leaf, err := c.sign(&x509.Certificate{Subject: pkix.Name{CommonName: c.name()}, DNSNames: c.o.DNSNames, IPAddresses: c.o.IPs,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
			c.o.CertValidity, &key.PublicKey, out.cas[0], out.caKey)
		if err != nil {
			return nil, false, err
		}
		keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
		if err != nil {
			return nil, false, err
		}
		leafPEM, err := cert.EncodeCertificates(leaf)
		if err != nil {
			return nil, false, err
		}
		out.leaf, out.tlsPEM, out.tlsKey, changed = leaf, leafPEM, keyPEM, true
	}
	return out, changed || len(out.cas) != len(m.cas), nil
}

func (c *Certs) name() string {
	if len(c.o.DNSNames) > 0 {
		return c.o.DNSNames[0]
	}
	return c.o.IPs[0].String()
}

// covers reports whether a serving certificate names exactly the configured names.
func (c *Certs) covers(leaf *x509.Certificate) bool {
	if !slices.Equal(leaf.DNSNames, c.o.DNSNames) || len(leaf.IPAddresses) != len(c.o.IPs) {
		return false
	}
	for i, ip := range c.o.IPs {
		if !leaf.IPAddresses[i].Equal(ip) {
			return false
		}
	}
	return true
}

// sign issues tmpl for pub, valid from a minute ago for validity, signed by parent (itself
// when nil) with key.
func (c *Certs) sign(tmpl *x509.Certificate, validity time.Duration, pub *ecdsa.PublicKey, parent *x509.Certificate, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	now := c.o.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Minute), now.Add(validity)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// putBundle sets the caBundle of every webhook of the configuration that lacks it.
func (c *Certs) putBundle(ctx context.Context, bundle []byte) error {
	api := c.o.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	for range 5 {
		cfg, err := api.Get(ctx, c.o.Config, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read MutatingWebhookConfiguration %s: %w", c.o.Config, err)
		}
		changed := false
		for i := range cfg.Webhooks {
			if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, bundle) {
				cfg.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
			}
		}
		if !changed {
			return nil
		}
		if _, err := api.Update(ctx, cfg, metav1.UpdateOptions{FieldManager: "podmedic"}); apierrors.IsConflict(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("set the caBundle of MutatingWebhookConfiguration %s: %w", c.o.Config, err)
		}
		c.o.Logger.Info("webhook caBundle set", zap.String("configuration", c.o.Config))
		return nil
	}
	return fmt.Errorf("MutatingWebhookConfiguration %s changed by others 5 times in a row", c.o.Config)
}
