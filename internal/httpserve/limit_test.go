package httpserve

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLimit: with n requests in flight the next is answered 503 at once, with Retry-After; a
// freed slot serves again.
func TestLimit(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		w.WriteHeader(http.StatusNoContent)
	}), 2)
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
			codes <- rec.Code
		})
		<-entered
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.True(t, strings.Contains(rec.Body.String(), "at most 2"), rec.Body.String())

	close(release)
	wg.Wait()
	require.Equal(t, http.StatusNoContent, <-codes)
	require.Equal(t, http.StatusNoContent, <-codes)
	go func() { <-entered }()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	assert.Equal(t, http.StatusNoContent, rec.Code, "slots are given back")
}
