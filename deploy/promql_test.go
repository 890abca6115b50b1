package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// A reader of the PromQL the dashboard uses, enough to name what each query reads: the metric names of its
// selectors, the label names (and '=' values) of their matchers, and the labels of by/without/on/ignoring/
// group_left/group_right clauses. Range and subquery brackets are skipped (they hold durations and Grafana's
// $__rate_interval). Anything it does not understand is an error, so the dashboard cannot drift into queries
// the test would misread.

// promSelector is one vector selector: metric{label="value", ...}.
type promSelector struct {
	metric string
	labels []string          // label names of its matchers, in order
	equal  map[string]string // label → value of its '=' matchers
}

// promQuery is what one expression reads.
type promQuery struct {
	selectors []promSelector
	grouping  []string // labels named in grouping clauses
}

type promToken struct {
	kind string // "ident", "string", "number", "punct"
	text string
}

var promAggregators = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio"}

var promGroupingWords = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

var promKeywords = []string{"and", "or", "unless", "bool", "offset"}

func lexPromQL(s string) ([]promToken, error) {
	var out []promToken
	rs := []rune(s)
	isIdentStart := func(r rune) bool { return r == '_' || r == ':' || (r < unicode.MaxASCII && unicode.IsLetter(r)) }
	isIdent := func(r rune) bool { return isIdentStart(r) || (r >= '0' && r <= '9') }
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '"' || r == '\'' || r == '`':
			j := i + 1
			var b strings.Builder
			for ; j < len(rs) && rs[j] != r; j++ {
				if rs[j] == '\\' && r != '`' && j+1 < len(rs) {
					j++
				}
				b.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, promToken{"string", b.String()})
			i = j + 1
		case r == '[':
			j := i
			for j < len(rs) && rs[j] != ']' {
				j++
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unterminated [ at %d", i)
			}
			i = j + 1
		case isIdentStart(r):
			j := i
			for j < len(rs) && isIdent(rs[j]) {
				j++
			}
			out = append(out, promToken{"ident", string(rs[i:j])})
			i = j
		case r >= '0' && r <= '9' || (r == '.' && i+1 < len(rs) && rs[i+1] >= '0' && rs[i+1] <= '9'):
			j := i
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9' || rs[j] == '.' || rs[j] == 'e') {
				j++
			}
			out = append(out, promToken{"number", string(rs[i:j])})
			i = j
		default:
			two := ""
			if i+1 < len(rs) {
				two = string(rs[i : i+2])
			}
			switch {
			case slices.Contains([]string{"=~", "!~", "!=", "==", ">=", "<="}, two):
				out = append(out, promToken{"punct", two})
				i += 2
			case strings.ContainsRune("=(){},+-*/%^<>", r):
				out = append(out, promToken{"punct", string(r)})
				i++
			default:
				return nil, fmt.Errorf("unexpected %q at %d", r, i)
			}
		}
	}
	return out, nil
}

func parsePromQL(expr string) (promQuery, error) {
	toks, err := lexPromQL(expr)
	if err != nil {
		return promQuery{}, fmt.Errorf("%s: %w", expr, err)
	}
	var q promQuery
	next := func(i int) promToken {
		if i+1 < len(toks) {
			return toks[i+1]
		}
		return promToken{}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == "ident" && slices.Contains(promGroupingWords, t.text):
			if next(i).text != "(" {
				continue // group_left without labels
			}
			j := i + 2
			for ; j < len(toks) && toks[j].text != ")"; j++ {
				switch {
				case toks[j].kind == "ident":
					q.grouping = append(q.grouping, toks[j].text)
				case toks[j].text != ",":
					return q, fmt.Errorf("%s: %q in a label list", expr, toks[j].text)
				}
			}
			i = j
		case t.kind == "ident" && (slices.Contains(promAggregators, t.text) || slices.Contains(promKeywords, t.text) || next(i).text == "("):
			// an aggregation, a keyword or a function call
		case t.kind == "ident":
			sel := promSelector{metric: t.text, equal: map[string]string{}}
			if next(i).text == "{" {
				j := i + 2
				for ; j < len(toks) && toks[j].text != "}"; j++ {
					if toks[j].text == "," {
						continue
					}
					if j+2 >= len(toks) || toks[j].kind != "ident" || toks[j+1].kind != "punct" || toks[j+2].kind != "string" {
						return q, fmt.Errorf("%s: bad matcher in the selector of %s", expr, t.text)
					}
					sel.labels = append(sel.labels, toks[j].text)
					if toks[j+1].text == "=" {
						sel.equal[toks[j].text] = toks[j+2].text
					} else if !slices.Contains([]string{"!=", "=~", "!~"}, toks[j+1].text) {
						return q, fmt.Errorf("%s: bad matcher operator %q", expr, toks[j+1].text)
					}
					j += 2
				}
				if j >= len(toks) {
					return q, fmt.Errorf("%s: unterminated selector of %s", expr, t.text)
				}
				i = j
			}
			q.selectors = append(q.selectors, sel)
		case t.text == "{":
			return q, fmt.Errorf("%s: a selector without a metric name", expr)
		case t.kind == "string":
			return q, fmt.Errorf("%s: a string outside a selector", expr)
		}
	}
	return q, nil
}

func TestPromQLReader(t *testing.T) {
	q, err := parsePromQL(`histogram_quantile(0.99, sum by (node, le) (rate(tickmesh_x_bucket{node=~"$node", le="0.1", code!="4001"}[$__rate_interval]))) - sum(a_total) > 0`)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.selectors) != 2 || q.selectors[0].metric != "tickmesh_x_bucket" || q.selectors[1].metric != "a_total" {
		t.Fatalf("selectors %+v", q.selectors)
	}
	if !slices.Equal(q.selectors[0].labels, []string{"node", "le", "code"}) || q.selectors[0].equal["le"] != "0.1" || len(q.selectors[0].equal) != 1 {
		t.Fatalf("matchers %+v", q.selectors[0])
	}
	if !slices.Equal(q.grouping, []string{"node", "le"}) {
		t.Fatalf("grouping %v", q.grouping)
	}
	for _, bad := range []string{`{__name__="x"}`, `x{y="z"`, `x{y}`, `"s"`, `x[5m`, `x # y`} {
		if _, err := parsePromQL(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
