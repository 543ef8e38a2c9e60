package airflow

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Credentials authenticate to Airflow's REST API: a bearer token, else a username and password
// (Basic auth on v1, exchanged for a JWT on v2). Their String and GoString never show the
// secrets, so they are safe in logs and errors.
type Credentials struct {
	Username string
	Password string
	Token    string
}

// String implements fmt.Stringer without the secrets.
func (c Credentials) String() string {
	switch {
	case c.Token != "":
		return "bearer token (redacted)"
	case c.Username != "":
		return "user " + c.Username + " (password redacted)"
	}
	return "no credentials"
}

// GoString implements fmt.GoStringer without the secrets.
func (c Credentials) GoString() string { return c.String() }

// CredentialsFromEnv reads AIRFLOW_USERNAME/AIRFLOW_PASSWORD or AIRFLOW_TOKEN, each also from
// the file named by its *_FILE variant (a mounted Secret; a trailing newline is dropped).
// Setting a variable and its *_FILE both is an error; so is a user without a password. No
// credentials at all is allowed (an Airflow without auth, or a proxy that adds it).
func CredentialsFromEnv(getenv func(string) string) (Credentials, error) {
	var c Credentials
	var errs []error
	read := func(name string) string {
		v, file := getenv(name), getenv(name+"_FILE")
		switch {
		case v != "" && file != "":
			errs = append(errs, fmt.Errorf("set %s or %s_FILE, not both", name, name))
			return ""
		case file != "":
			b, err := os.ReadFile(file)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
				return ""
			}
			return strings.TrimRight(string(b), "\r\n")
		}
		return v
	}
	c.Username, c.Password, c.Token = read("AIRFLOW_USERNAME"), read("AIRFLOW_PASSWORD"), read("AIRFLOW_TOKEN")
	if c.Username != "" && c.Password == "" {
		errs = append(errs, errors.New("AIRFLOW_USERNAME is set but AIRFLOW_PASSWORD (or AIRFLOW_PASSWORD_FILE) is not"))
	}
	if c.Password != "" && c.Username == "" {
		errs = append(errs, errors.New("AIRFLOW_PASSWORD is set but AIRFLOW_USERNAME (or AIRFLOW_USERNAME_FILE) is not"))
	}
	return c, errors.Join(errs...)
}
