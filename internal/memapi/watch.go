package memapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// watch streams the changes of the target's objects as newline-delimited JSON watch events,
// until the request's context ends or timeoutSeconds pass:
//
//   - sendInitialEvents=true (a watch-list, what client-go's reflectors do first): the current
//     objects as ADDED, a BOOKMARK marked k8s.io/initial-events-end, then the changes;
//   - resourceVersion "" or "0": the current objects as ADDED, then the changes;
//   - resourceVersion N: the changes after N (410 Gone when N is older than the history).
func (s *Server) watch(w http.ResponseWriter, r *http.Request, t target, opts metav1.ListOptions) {
	sel, err := newSelector(t, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	var rv uint64
	if opts.ResourceVersion != "" {
		if rv, err = strconv.ParseUint(opts.ResourceVersion, 10, 64); err != nil {
			writeError(w, apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", opts.ResourceVersion)))
			return
		}
	}
	initial, initialEnd := rv == 0, false
	if opts.SendInitialEvents != nil {
		initial, initialEnd = *opts.SendInitialEvents, *opts.SendInitialEvents
		if initial && (!opts.AllowWatchBookmarks || opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan) {
			writeError(w, statusError(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
				"sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan"))
			return
		}
	}

	s.mu.Lock()
	if rv > s.rv {
		s.mu.Unlock()
		err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", rv, s.rv), 1)
		err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}
		writeError(w, err)
		return
	}
	var current []*object
	switch {
	case initial:
		for _, o := range s.objects[t.res] {
			if sel.matches(o) {
				current = append(current, o)
			}
		}
		rv = s.rv
	case rv == 0: // sendInitialEvents=false: from now on
		rv = s.rv
	case rv < s.compacted:
		s.mu.Unlock()
		writeError(w, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, s.compacted)))
		return
	}
	s.mu.Unlock()
	sortObjects(current)

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	send := func(typ watch.EventType, obj []byte) bool {
		var b bytes.Buffer
		b.WriteString(`{"type":"` + string(typ) + `","object":`)
		b.Write(obj)
		b.WriteString("}\n")
		if _, err := w.Write(b.Bytes()); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	bookmark := func(rv uint64, initialEnd bool) bool {
		annotations := ""
		if initialEnd {
			annotations = `,"annotations":{"` + metav1.InitialEventsAnnotationKey + `":"true"}`
		}
		return send(watch.Bookmark, []byte(fmt.Sprintf(`{"kind":%q,"apiVersion":%q,"metadata":{"resourceVersion":"%d"%s}}`,
			t.res.kind, t.res.apiVersion(), rv, annotations)))
	}
	for _, o := range current {
		if !send(watch.Added, t.res.withKind(o.raw)) {
			return
		}
	}
	if initialEnd && !bookmark(rv, true) {
		return
	}

	var timeout <-chan time.Time
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timer := time.NewTimer(time.Duration(*opts.TimeoutSeconds) * time.Second)
		defer timer.Stop()
		timeout = timer.C
	}
	var bookmarks <-chan time.Time
	if opts.AllowWatchBookmarks {
		ticker := time.NewTicker(s.bookmarkEvery)
		defer ticker.Stop()
		bookmarks = ticker.C
	}
	for {
		s.mu.Lock()
		if rv < s.compacted { // this watch fell behind the history
			s.mu.Unlock()
			st := status(apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, s.compacted)))
			body, _ := json.Marshal(st)
			send(watch.Error, body)
			return
		}
		// The changes after rv; history is only appended to or replaced, so the slice stays valid.
		i := sort.Search(len(s.history), func(i int) bool { return s.history[i].rv > rv })
		changes := s.history[i:]
		wake := s.changed
		head := s.rv
		s.mu.Unlock()
		for _, c := range changes {
			if typ, obj := sel.event(c); typ != "" && !send(typ, obj) {
				return
			}
		}
		rv = head
		select {
		case <-wake:
		case <-bookmarks:
			if !bookmark(rv, false) {
				return
			}
		case <-timeout:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// event is what a watch with this selector sees of a change, as the apiserver's watch cache
// does: an object entering the selection is ADDED, one leaving it is DELETED (its previous state
// with the change's resourceVersion). typ is "" when the watch sees nothing.
func (sel selector) event(c *change) (typ watch.EventType, obj []byte) {
	if c.res != sel.res {
		return "", nil
	}
	now := c.typ != watch.Deleted && sel.matches(c.obj)
	before := c.prev != nil && sel.matches(c.prev)
	switch {
	case now && before:
		return watch.Modified, c.res.withKind(c.obj.raw)
	case now:
		return watch.Added, c.res.withKind(c.obj.raw)
	case before && c.typ == watch.Deleted:
		return watch.Deleted, c.res.withKind(c.obj.raw)
	case before:
		prev, m, err := decodeStored(c.res, c.prev)
		if err != nil {
			return "", nil
		}
		m.SetResourceVersion(strconv.FormatUint(c.rv, 10))
		o, err := newObject(c.res, prev)
		if err != nil {
			return "", nil
		}
		return watch.Deleted, c.res.withKind(o.raw)
	}
	return "", nil
}
