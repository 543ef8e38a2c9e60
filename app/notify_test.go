package app

import (
	"errors"
	"fmt"
	"testing"

	slackapi "github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
)

// TestIsAuthError: only Slack's own refusal of the token stops the start; an unreachable Slack
// (whatever its error text) does not.
func TestIsAuthError(t *testing.T) {
	assert.True(t, isAuthError(fmt.Errorf("slack: auth.test: %w", slackapi.SlackErrorResponse{Err: "invalid_auth"})))
	assert.True(t, isAuthError(slackapi.SlackErrorResponse{Err: "token_revoked"}))
	assert.False(t, isAuthError(slackapi.SlackErrorResponse{Err: "ratelimited"}))
	assert.False(t, isAuthError(errors.New(`Post "https://proxy/invalid_auth": dial tcp: connection refused`)))
}
