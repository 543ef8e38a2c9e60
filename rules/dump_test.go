package rules

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

const dumpPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"w1","namespace":"airflow","managedFields":[{"manager":"kubelet"}]},"status":{"phase":"Running"}}`

// TestReadDumpStreams: the shapes a dump comes in — kubectl's List (items before kind), a
// typed list from the API (items without a kind), several Lists in turn — and the trimming
// applied to each item as it is read.
func TestReadDumpStreams(t *testing.T) {
	t.Run("kubectl order", func(t *testing.T) {
		d := &Dump{}
		require.NoError(t, d.ReadDump(strings.NewReader(`{"apiVersion":"v1","items":[`+dumpPod+
			`,{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c"}},{"apiVersion":"v1","kind":"Event","metadata":{"name":"e"}},{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"}}],"kind":"List","metadata":{"resourceVersion":""}}`)))
		require.Len(t, d.Pods, 1)
		assert.Equal(t, "w1", d.Pods[0].Name)
		assert.Len(t, d.PVCs, 1)
		assert.Len(t, d.Events, 1)
		assert.Equal(t, 1, d.Skipped, "the Node")
	})
	t.Run("typed list", func(t *testing.T) {
		d := &Dump{}
		require.NoError(t, d.ReadDump(strings.NewReader(`{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}`)))
		require.Len(t, d.Pods, 2)
		d = &Dump{}
		require.NoError(t, d.ReadDump(strings.NewReader(`{"items":[{"metadata":{"name":"a"}}],"kind":"PodList"}`)), "kind after items")
		require.Len(t, d.Pods, 1)
	})
	t.Run("trimmed as read", func(t *testing.T) {
		var seen int
		d := &Dump{Trim: Trimmer{Pod: func(p *corev1.Pod) *corev1.Pod {
			seen++
			p.ManagedFields = nil
			return p
		}}}
		require.NoError(t, d.ReadDump(strings.NewReader(`{"kind":"List","items":[`+dumpPod+`]}`)))
		require.NoError(t, d.ReadDump(strings.NewReader(`{"kind":"List","items":[`+dumpPod+`]}`)), "a second List adds to the first")
		assert.Equal(t, 2, seen)
		require.Len(t, d.Pods, 2)
		assert.Nil(t, d.Pods[0].ManagedFields)
	})
	t.Run("empty list", func(t *testing.T) {
		d := &Dump{}
		require.NoError(t, d.ReadDump(strings.NewReader(`{"kind":"List","items":null}`)))
		require.NoError(t, d.ReadDump(strings.NewReader(`{"kind":"List","items":[]}`)))
		assert.Empty(t, d.Pods)
	})
}

// TestReadDumpErrors: what is not a dump is refused with an error that says what and where.
func TestReadDumpErrors(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"empty", ``, "empty input: expected a Kubernetes v1 List"},
		{"array", `[1,2]`, "not a Kubernetes List: the input is a JSON array, not an object"},
		{"a pod", dumpPod, `not a Kubernetes List: kind is "Pod"`},
		{"no kind", `{"items":[]}`, `not a Kubernetes List: kind is ""`},
		{"items not an array", `{"kind":"List","items":{}}`, "items is a JSON object, not an array"},
		{"truncated", `{"kind":"List","items":[` + dumpPod, "truncated input"},
		{"truncated in an item", `{"kind":"List","items":[{"kind":"Pod","metadata":`, "items[0]: truncated input"},
		{"syntax", `{"kind":"List","items":[}`, "not JSON at byte"},
		{"bad item", `{"kind":"List","items":[` + dumpPod + `,{"kind":"Pod","metadata":{"name":7}}]}`, "items[1] (Pod): "},
		{"kindless item of a List", `{"kind":"List","items":[{"metadata":{"name":"a"}}]}`, "items[0]: an item of a List without a kind"},
		{"kind not a string", `{"kind":7,"items":[]}`, "not a Kubernetes List: kind:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := (&Dump{}).ReadDump(strings.NewReader(c.in))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// FuzzReadDump: any input either reads or is refused with an error; never a panic.
func FuzzReadDump(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"v1","items":[` + dumpPod + `],"kind":"List"}`))
	f.Add([]byte(`{"kind":"PodList","items":[{"metadata":{"name":"a"}}]}`))
	f.Add([]byte(`{"kind":"List","items":[{"kind":"Event","metadata":{"name":"e"},"count":3}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := &Dump{}
		if err := d.ReadDump(strings.NewReader(string(in))); err != nil {
			assert.NotEmpty(t, err.Error())
		}
	})
}
