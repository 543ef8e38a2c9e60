package slack

import (
	"fmt"

	"github.com/podmedic/podmedic/rules"
)

func fmtV(v any) string      { return fmt.Sprintf("%v", v) }
func fmtPlusV(v any) string  { return fmt.Sprintf("%+v", v) }
func fmtSharpV(v any) string { return fmt.Sprintf("%#v", v) }

// testSummaries are the one-line summaries of the kinds podmedic ships.
var testSummaries Summarizer = rules.NewDefaultRegistry()
