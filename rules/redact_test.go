package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRedactor(t *testing.T) {
	r, err := NewRedactor([]string{`ssn-\d{3}-\d{4}`})
	require.NoError(t, err)
	for in, want := range map[string]string{
		"connecting with password=hunter2 to db":                                 "connecting with password=[redacted] to db",
		`{"api_key": "sk-123456", "user": "etl"}`:                                `{"api_key": [redacted], "user": "etl"}`,
		"DB_PASSWORD: s3cr3t":                                                    "DB_PASSWORD: [redacted]",
		"export AIRFLOW__CORE__FERNET_SECRET='abc def'":                          "export AIRFLOW__CORE__FERNET_SECRET=[redacted]",
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc":                     "Authorization: Bearer [redacted]",
		"key AKIAIOSFODNN7EXAMPLE used":                                          "key [redacted] used",
		"GET postgres://etl:hunter2@db.internal:5432/warehouse":                  "GET postgres://[redacted]@db.internal:5432/warehouse",
		"customer ssn-123-4567 failed":                                           "customer [redacted] failed",
		"Task exited with return code 1":                                         "Task exited with return code 1",
		"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----": "[redacted] private key",
	} {
		assert.Equal(t, want, r.Redact(in), in)
	}
	assert.Equal(t, []string{"before", "[redacted] private key", Redacted, Redacted, "after"},
		r.RedactLines([]string{"before", "-----BEGIN PRIVATE KEY-----", "MIIEvQ", "-----END PRIVATE KEY-----", "after"}))

	_, err = NewRedactor([]string{"("})
	assert.Error(t, err)
}
