package deploy

import (
	"fmt"
	"regexp"
	"strings"
)

// A reader for the plain subset of YAML that docker-compose.yml keeps to, so that the tests can check it
// without a YAML library: block mappings with plain keys, block sequences of scalars or of block mappings
// ("- key: value" with the mapping's further keys aligned under the first), flow sequences of scalars
// ([a, "b"]), plain, single- and double-quoted scalars, comments. Anything else (anchors, aliases, merge keys,
// tags, block scalars, flow mappings, tabs, documents) is an error, so the file cannot drift into YAML this
// reader would misread.

type yKind int

const (
	yNull yKind = iota
	yScalar
	yMap
	ySeq
)

// yNode is a parsed value.
type yNode struct {
	kind   yKind
	line   int
	scalar string
	keys   []string // mapping keys in file order
	m      map[string]*yNode
	items  []*yNode
}

// get follows a path of mapping keys; nil when absent.
func (n *yNode) get(path ...string) *yNode {
	for _, k := range path {
		if n == nil || n.kind != yMap {
			return nil
		}
		n = n.m[k]
	}
	return n
}

// str is the scalar at path, "" when absent or not a scalar.
func (n *yNode) str(path ...string) string {
	v := n.get(path...)
	if v == nil || v.kind != yScalar {
		return ""
	}
	return v.scalar
}

// strs is the sequence of scalars at path.
func (n *yNode) strs(path ...string) []string {
	v := n.get(path...)
	if v == nil || v.kind != ySeq {
		return nil
	}
	var out []string
	for _, it := range v.items {
		out = append(out, it.scalar)
	}
	return out
}

type yLine struct {
	num    int
	indent int
	text   string
}

var yKey = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

func parseYAMLSubset(src string) (*yNode, error) {
	var lines []yLine
	for i, raw := range strings.Split(src, "\n") {
		num := i + 1
		if strings.ContainsRune(raw, '\t') {
			return nil, fmt.Errorf("line %d: tab", num)
		}
		text := strings.TrimRight(stripComment(raw), " \r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if text == "---" || text == "..." {
			return nil, fmt.Errorf("line %d: document markers are not supported", num)
		}
		indent := len(text) - len(strings.TrimLeft(text, " "))
		lines = append(lines, yLine{num, indent, text[indent:]})
	}
	if len(lines) == 0 {
		return &yNode{kind: yNull}, nil
	}
	if lines[0].indent != 0 {
		return nil, fmt.Errorf("line %d: the document must start at column 0", lines[0].num)
	}
	n, next, err := parseYBlock(lines, 0, 0)
	if err != nil {
		return nil, err
	}
	if next != len(lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", lines[next].num)
	}
	return n, nil
}

// stripComment removes a # comment that starts the line or follows a space, outside quotes.
func stripComment(s string) string {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' '):
			return s[:i]
		}
	}
	return s
}

// parseYBlock parses the block whose lines start at lines[i] with the given indentation.
func parseYBlock(lines []yLine, i, indent int) (*yNode, int, error) {
	if strings.HasPrefix(lines[i].text, "- ") || lines[i].text == "-" {
		seq := &yNode{kind: ySeq, line: lines[i].num}
		for i < len(lines) && lines[i].indent == indent {
			l := lines[i]
			item, ok := strings.CutPrefix(l.text, "- ")
			if !ok {
				return nil, i, fmt.Errorf("line %d: mixed sequence and mapping", l.num)
			}
			if _, _, isMap := splitYKey(item); isMap {
				// "- key: value": a mapping whose keys are aligned two columns right of the dash.
				sub := append([]yLine(nil), lines...)
				sub[i] = yLine{num: l.num, indent: indent + 2, text: item}
				v, next, err := parseYBlock(sub, i, indent+2)
				if err != nil {
					return nil, next, err
				}
				seq.items = append(seq.items, v)
				i = next
				if i < len(lines) && lines[i].indent > indent {
					return nil, i, fmt.Errorf("line %d: unexpected indentation", lines[i].num)
				}
				continue
			}
			v, err := parseYValue(item, l.num)
			if err != nil {
				return nil, i, err
			}
			seq.items = append(seq.items, v)
			i++
			if i < len(lines) && lines[i].indent > indent {
				return nil, i, fmt.Errorf("line %d: nested block under a sequence item is not supported", lines[i].num)
			}
		}
		return seq, i, nil
	}
	m := &yNode{kind: yMap, line: lines[i].num, m: map[string]*yNode{}}
	for i < len(lines) && lines[i].indent == indent {
		l := lines[i]
		key, rest, ok := splitYKey(l.text)
		if !ok {
			return nil, i, fmt.Errorf("line %d: want `key: value`, got %q", l.num, l.text)
		}
		if !yKey.MatchString(key) {
			return nil, i, fmt.Errorf("line %d: key %q: only plain keys (letters, digits, _ . -) are supported", l.num, key)
		}
		if _, dup := m.m[key]; dup {
			return nil, i, fmt.Errorf("line %d: duplicate key %q", l.num, key)
		}
		i++
		var v *yNode
		switch {
		case rest != "":
			var err error
			if v, err = parseYValue(rest, l.num); err != nil {
				return nil, i, err
			}
			if i < len(lines) && lines[i].indent > indent {
				return nil, i, fmt.Errorf("line %d: indented block after a value", lines[i].num)
			}
		case i < len(lines) && lines[i].indent > indent:
			var err error
			if v, i, err = parseYBlock(lines, i, lines[i].indent); err != nil {
				return nil, i, err
			}
		default:
			v = &yNode{kind: yNull, line: l.num}
		}
		m.keys = append(m.keys, key)
		m.m[key] = v
	}
	if i < len(lines) && lines[i].indent > indent {
		return nil, i, fmt.Errorf("line %d: unexpected indentation", lines[i].num)
	}
	return m, i, nil
}

// splitYKey splits "key: value" or "key:"; a colon inside quotes or not followed by a space does not count.
func splitYKey(s string) (key, rest string, ok bool) {
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `'`) || strings.HasPrefix(s, "[") {
		return "", "", false
	}
	if k, r, found := strings.Cut(s, ": "); found {
		return k, strings.TrimSpace(r), true
	}
	if k, found := strings.CutSuffix(s, ":"); found {
		return k, "", true
	}
	return "", "", false
}

// parseYValue parses a scalar or a flow sequence of scalars.
func parseYValue(s string, line int) (*yNode, error) {
	if strings.HasPrefix(s, "[") {
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("line %d: flow sequence must end on its line", line)
		}
		seq := &yNode{kind: ySeq, line: line}
		for _, part := range splitFlow(s[1 : len(s)-1]) {
			v, err := parseYScalar(strings.TrimSpace(part), line)
			if err != nil {
				return nil, err
			}
			seq.items = append(seq.items, v)
		}
		return seq, nil
	}
	return parseYScalar(s, line)
}

// splitFlow splits on commas outside quotes.
func splitFlow(s string) []string {
	var parts []string
	var quote rune
	start := 0
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == ',':
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if strings.TrimSpace(s[start:]) != "" || len(parts) > 0 {
		parts = append(parts, s[start:])
	}
	return parts
}

func parseYScalar(s string, line int) (*yNode, error) {
	n := &yNode{kind: yScalar, line: line}
	switch {
	case s == "":
		return nil, fmt.Errorf("line %d: empty flow item", line)
	case strings.HasPrefix(s, `"`):
		if len(s) < 2 || !strings.HasSuffix(s, `"`) {
			return nil, fmt.Errorf("line %d: unterminated double-quoted string", line)
		}
		body := s[1 : len(s)-1]
		if strings.ContainsAny(body, `"\`) {
			return nil, fmt.Errorf("line %d: escapes in double-quoted strings are not supported", line)
		}
		n.scalar = body
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return nil, fmt.Errorf("line %d: unterminated single-quoted string", line)
		}
		body := strings.ReplaceAll(s[1:len(s)-1], "''", "\x00")
		if strings.Contains(body, "'") {
			return nil, fmt.Errorf("line %d: stray quote in single-quoted string", line)
		}
		n.scalar = strings.ReplaceAll(body, "\x00", "'")
	default:
		if strings.ContainsAny(s[:1], "&*!|>{}[]%@`,?:-") && !(s[0] == '-' && len(s) > 1 && s[1] != ' ') {
			return nil, fmt.Errorf("line %d: %q: anchors, aliases, tags, block scalars and flow mappings are not supported", line, s)
		}
		if strings.Contains(s, ": ") || strings.Contains(s, " #") {
			return nil, fmt.Errorf("line %d: %q: quote a plain scalar holding ': ' or ' #'", line, s)
		}
		n.scalar = s
	}
	return n, nil
}
