package memapi

import (
	"context"
	"fmt"
	"io"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Clientset returns client-go's real clientset talking to s through RoundTripper. host (default
// http://memapi.invalid) is only what the client's URLs and errors show: nothing is dialled.
func (s *Server) Clientset(host string) (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfigAndClient(restConfig(host), &http.Client{Transport: s.RoundTripper()})
}

// Dynamic returns client-go's dynamic client talking to s, as Clientset does (for the custom
// resources: SparkApplications).
func (s *Server) Dynamic(host string) (*dynamic.DynamicClient, error) {
	return dynamic.NewForConfigAndClient(restConfig(host), &http.Client{Transport: s.RoundTripper()})
}

func restConfig(host string) *rest.Config {
	if host == "" {
		host = "http://memapi.invalid"
	}
	return &rest.Config{
		Host:          host,
		ContentConfig: rest.ContentConfig{ContentType: "application/json", AcceptContentTypes: "application/json"},
		QPS:           -1, // no client-side rate limit: the server is in memory
	}
}

// RoundTripper returns a transport that serves each request with s in memory, as a client sees
// an HTTP server: the response comes once its header is written and its body streams (a watch
// stays open). The body ends with the request's context (reads then fail with the context's
// error, as over the network), and closing it ends the handler.
func (s *Server) RoundTripper() http.RoundTripper { return roundTripper{s} }

type roundTripper struct{ h http.Handler }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	ctx, cancel := context.WithCancel(req.Context())
	sreq := req.Clone(ctx)
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	sreq.RequestURI = req.URL.RequestURI()
	pr, pw := io.Pipe()
	// The handler's context ends with the request's or when the client closes the body; then
	// its writes fail and a reader still waiting gets the context's error.
	context.AfterFunc(ctx, func() { pw.CloseWithError(context.Cause(ctx)) })
	rw := &responseWriter{header: http.Header{}, body: pw, started: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				err := fmt.Errorf("memapi: %s %s: %v", req.Method, req.URL.Path, v)
				if !rw.wrote {
					writeError(rw, apierrors.NewInternalError(err))
				}
				pw.CloseWithError(err)
			}
			rw.WriteHeader(http.StatusOK) // when the handler wrote nothing
			_ = pw.Close()
			cancel()
			_ = sreq.Body.Close()
		}()
		rt.h.ServeHTTP(rw, sreq)
	}()
	select {
	case <-rw.started:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	return &http.Response{
		Status:     fmt.Sprintf("%d %s", rw.status, http.StatusText(rw.status)),
		StatusCode: rw.status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        rw.sent,
		Body:          &body{PipeReader: pr, cancel: cancel},
		ContentLength: -1,
		Request:       req,
	}, nil
}

// responseWriter hands what the handler writes to the client's body through a pipe: a write
// returns once the client has read it, so every write is flushed.
type responseWriter struct {
	header  http.Header
	body    *io.PipeWriter
	started chan struct{} // closed by WriteHeader
	wrote   bool
	status  int
	sent    http.Header // the header as it was at WriteHeader
}

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote, w.status, w.sent = true, code, w.header.Clone()
	close(w.started)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush implements http.Flusher; writes are not buffered.
func (w *responseWriter) Flush() {}

// body is a response body; closing it ends the handler.
type body struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (b *body) Close() error {
	b.cancel()
	return b.PipeReader.Close()
}
