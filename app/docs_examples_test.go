package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailroom/mailroom/app/apptest"
	"github.com/mailroom/mailroom/platform/testkit/smtptest"
	"github.com/mailroom/mailroom/platform/testkit/wait"
)

// TestEveryCurlExampleInTheDocsRunsAgainstALiveApp runs every shell block of the
// README and docs/api.md that holds a curl command, in order, as a reader would in
// one terminal, against a live Mailroom: the README's on the default capture
// transport it describes, docs/api.md's with a real SMTP server that refuses the
// two mailboxes the page says do not exist. Each curl is sent as the HTTP request
// it spells (through apptest, so the OpenAPI validator checks it too), and fails
// the test on a status other than the one its answer comment shows (any 2xx when
// the comment shows none) or on an answer whose shape differs from the one shown.
// Variables carry ids from one answer to the next (ID=$(curl ... | jq -r .id)), as
// in the shell. Mail moves on its own, so a GET, and a request answered with a 4xx
// the page does not show, is asked again for up to 15 s before it fails: a 4xx
// changed nothing.
func TestEveryCurlExampleInTheDocsRunsAgainstALiveApp(t *testing.T) {
	for _, doc := range []struct {
		path string
		smtp bool
	}{{"../README.md", false}, {"../docs/api.md", true}} {
		t.Run(strings.TrimPrefix(doc.path, "../"), func(t *testing.T) {
			cfg := apptest.Config(t)
			if doc.smtp {
				srv := smtptest.Start(t)
				for _, gone := range []string{"gone@example.com", "nobody@example.com"} {
					srv.FailRecipientWithReply(gone, 550, -1, "5.1.1 No such user")
				}
				apptest.UseSMTP(cfg, srv)
			}
			in := apptest.Start(t, cfg)
			markdown, err := os.ReadFile(doc.path)
			if err != nil {
				t.Fatal(err)
			}
			blocks := curlBlocks(string(markdown))
			if len(blocks) == 0 {
				t.Fatalf("%s has no shell block with a curl command", doc.path)
			}
			s := &exampleSession{in: in, vars: map[string]string{"MR_KEY": apptest.AdminKey}}
			for _, b := range blocks {
				s.runBlock(t, doc.path, b)
			}
			t.Logf("%s: %d blocks, %d curl requests", doc.path, len(blocks), s.requests)
		})
	}
}

// shellBlock is one ```sh fenced block of a Markdown file.
type shellBlock struct {
	line int // the line of its first command, 1-based
	text string
}

// curlBlocks returns the ```sh blocks of markdown that hold a curl command.
func curlBlocks(markdown string) []shellBlock {
	var out []shellBlock
	lines := strings.Split(markdown, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sh" {
			continue
		}
		start := i + 1
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
		}
		text := strings.Join(lines[start:min(i, len(lines))], "\n")
		if regexp.MustCompile(`(^|[\s(])curl `).MatchString(text) {
			out = append(out, shellBlock{line: start + 1, text: text})
		}
	}
	return out
}

// exampleSession is the state a reader's terminal keeps between blocks: shell
// variables, and the app they talk to.
type exampleSession struct {
	in       *apptest.Instance
	vars     map[string]string
	requests int
}

// runBlock runs each command of b in turn, checking every curl against the answer
// comment that follows it.
func (s *exampleSession) runBlock(t *testing.T, path string, b shellBlock) {
	t.Helper()
	items, err := tokenizeShell(b.text, b.line)
	if err != nil {
		t.Fatalf("%s:%d: %v", path, b.line, err)
	}
	for i := 0; i < len(items); i++ {
		it := items[i]
		if it.comment {
			continue
		}
		var answer []string
		for j := i + 1; j < len(items) && items[j].comment; j++ {
			answer = append(answer, items[j].text)
		}
		where := fmt.Sprintf("%s:%d", path, it.line)
		if err := s.runCommand(t, it.words, parseAnswer(answer)); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
	}
}

// runCommand runs one command: an assignment (from a command substitution or a
// value), or a curl whose answer must match want.
func (s *exampleSession) runCommand(t *testing.T, words []shellWord, want expectedAnswer) error {
	if len(words) > 0 && words[0].literal() == "export" {
		words = words[1:]
	}
	if len(words) == 0 {
		return fmt.Errorf("an empty command")
	}
	if name, value, ok := words[0].assignment(); ok {
		if len(words) > 1 {
			return fmt.Errorf("only one assignment per line is run, not %d words", len(words))
		}
		return s.assign(t, name, value, want)
	}
	args, err := s.expandAll(words)
	if err != nil {
		return err
	}
	if args[0] != "curl" {
		return fmt.Errorf("cannot run %q: a block with a curl command holds curl commands, comments and assignments only", args[0])
	}
	_, err = s.curl(t, args[1:], want, "")
	return err
}

// assign sets a variable: from $(curl ... | jq -r PATH), $(date ...), or a value.
// A value holding "..." is a placeholder for one the reader has (MR_KEY): the
// session must have it already.
func (s *exampleSession) assign(t *testing.T, name string, value shellWord, want expectedAnswer) error {
	if len(value) == 1 && value[0].sub {
		out, err := s.substitute(t, value[0].text, want)
		if err != nil {
			return fmt.Errorf("%s=$(%s): %w", name, value[0].text, err)
		}
		s.vars[name] = out
		return nil
	}
	v, err := s.expand(value)
	if err != nil {
		return err
	}
	if strings.Contains(v, "...") {
		if _, ok := s.vars[name]; !ok {
			return fmt.Errorf("%s is a placeholder (%q) the test has no value for", name, v)
		}
		return nil
	}
	s.vars[name] = v
	return nil
}

// substitute runs the pipeline of a command substitution and returns its output:
// `curl ... | jq -r PATH` or `date -u -d '+N day' +%Y-%m-%dT%H:%M:%SZ`.
func (s *exampleSession) substitute(t *testing.T, text string, want expectedAnswer) (string, error) {
	stages, err := splitPipeline(text)
	if err != nil {
		return "", err
	}
	var argv [][]string
	for _, st := range stages {
		items, err := tokenizeShell(st, 0)
		if err != nil {
			return "", err
		}
		if len(items) != 1 || items[0].comment {
			return "", fmt.Errorf("stage %q is not one command", st)
		}
		a, err := s.expandAll(items[0].words)
		if err != nil {
			return "", err
		}
		argv = append(argv, a)
	}
	switch {
	case argv[0][0] == "date" && len(argv) == 1:
		return runDate(argv[0][1:])
	case argv[0][0] == "curl" && len(argv) == 2 && len(argv[1]) == 3 && argv[1][0] == "jq" && argv[1][1] == "-r":
		return s.curl(t, argv[0][1:], want, argv[1][2])
	}
	return "", fmt.Errorf("only `curl ... | jq -r PATH` and `date -u -d '+N day' +FORMAT` are run in $(...)")
}

// runDate is GNU date for the one use the docs make of it: a time N days or hours
// from now, in UTC, as RFC 3339.
func runDate(args []string) (string, error) {
	if len(args) != 4 || args[0] != "-u" || args[1] != "-d" || args[3] != "+%Y-%m-%dT%H:%M:%SZ" {
		return "", fmt.Errorf("date %s: only date -u -d '+N day' +%%Y-%%m-%%dT%%H:%%M:%%SZ is run", strings.Join(args, " "))
	}
	m := regexp.MustCompile(`^\+(\d+) (day|hour)s?$`).FindStringSubmatch(args[2])
	if m == nil {
		return "", fmt.Errorf("date -d %q: only '+N day' or '+N hour'", args[2])
	}
	n, _ := strconv.Atoi(m[1])
	unit := time.Hour
	if m[2] == "day" {
		unit = 24 * time.Hour
	}
	return time.Now().UTC().Add(time.Duration(n) * unit).Format("2006-01-02T15:04:05Z"), nil
}

// curlRequest is the HTTP request a curl command spells.
type curlRequest struct {
	method, path string
	headers      []string // name, value pairs
	body         []byte
}

// parseCurl reads the curl options the docs use: -s, -i, -X METHOD, -H 'Name: value',
// -d DATA and the URL, which must be the default http.addr.
func parseCurl(args []string) (curlRequest, error) {
	var r curlRequest
	hasKey := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-s" || a == "-i" || a == "-si" || a == "-is":
		case (a == "-X" || a == "-H" || a == "-d") && i+1 < len(args):
			i++
			switch a {
			case "-X":
				r.method = args[i]
			case "-d":
				r.body = []byte(args[i])
			case "-H":
				name, value, ok := strings.Cut(args[i], ":")
				if !ok {
					return r, fmt.Errorf("-H %q is not a header", args[i])
				}
				hasKey = hasKey || strings.EqualFold(name, "Authorization")
				r.headers = append(r.headers, name, strings.TrimSpace(value))
			}
		case strings.HasPrefix(a, "http://127.0.0.1:8080/"):
			if r.path != "" {
				return r, fmt.Errorf("two URLs: %s and %s", r.path, a)
			}
			r.path = strings.TrimPrefix(a, "http://127.0.0.1:8080")
		default:
			return r, fmt.Errorf("curl %q: not an option the docs' test knows, nor a URL on http://127.0.0.1:8080", a)
		}
	}
	if r.path == "" {
		return r, fmt.Errorf("curl without a URL")
	}
	if r.method == "" {
		r.method = http.MethodGet
		if r.body != nil {
			r.method = http.MethodPost
		}
	}
	if !hasKey {
		r.headers = append(r.headers, apptest.NoKey...)
	}
	return r, nil
}

// exampleTimeout bounds how long a request is asked again while mail moves.
const exampleTimeout = 15 * time.Second

// curl sends the request args spell, asking again while it may (see the test's
// comment), and returns the value jqPath picks out of the answer ("" without one).
func (s *exampleSession) curl(t *testing.T, args []string, want expectedAnswer, jqPath string) (string, error) {
	req, err := parseCurl(args)
	if err != nil {
		return "", err
	}
	var (
		last    apptest.Response
		picked  string
		failure error
	)
	try := func() bool {
		s.requests++
		var body any
		if req.body != nil {
			body = req.body
		}
		last = s.in.Do(t, req.method, req.path, body, req.headers...)
		failure = want.check(last)
		if failure == nil && jqPath != "" {
			picked, failure = jqPick(last.Body, jqPath)
		}
		if failure == nil {
			return true
		}
		retry := req.method == http.MethodGet || last.Status >= 400 && last.Status < 500 && last.Status != want.status
		return !retry
	}
	wait.Until(t, exampleTimeout, 50*time.Millisecond, try, func() string {
		return fmt.Sprintf("%s %s: %v; last answer %d %s", req.method, req.path, failure, last.Status, clip(last.Body))
	})
	if failure != nil {
		return "", fmt.Errorf("%s %s: %w; the answer: %d %s", req.method, req.path, failure, last.Status, clip(last.Body))
	}
	return picked, nil
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// jqPick is jq -r for the paths the docs use: .name, .name[0].name, ...
func jqPick(body []byte, path string) (string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("jq %s: the answer is not JSON: %w", path, err)
	}
	steps := regexp.MustCompile(`\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]`).FindAllStringSubmatch(path, -1)
	if len(steps) == 0 || !strings.HasPrefix(path, ".") {
		return "", fmt.Errorf("jq path %q is not .field or .field[n]...", path)
	}
	for _, st := range steps {
		switch cur := v.(type) {
		case map[string]any:
			v = cur[st[1]]
		case []any:
			n, _ := strconv.Atoi(st[2])
			if st[2] == "" || n >= len(cur) {
				return "", fmt.Errorf("jq %s: no such element", path)
			}
			v = cur[n]
		default:
			return "", fmt.Errorf("jq %s: nothing at %s", path, st[0])
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	return "", fmt.Errorf("jq %s: %v is not a string or number", path, v)
}

// expectedAnswer is what an answer comment shows: a status (0: any 2xx), headers,
// and a JSON body whose shape the answer must have (nil: the body is not checked).
type expectedAnswer struct {
	status  int
	headers []string // name, value pairs
	body    any
	bodyErr error
}

var (
	statusLine = regexp.MustCompile(`^(?:HTTP/1\.1 )?([1-5]\d\d)\b ?(.*)$`)
	headerLine = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9-]*): (.+)$`)
)

// parseAnswer reads the comment lines under a command as its answer: a status line
// ("202 ..." or "HTTP/1.1 202 Accepted"), header lines ("Location: ..."), a JSON
// body (on the status line or its own, continued on the next lines until it
// parses). Prose ends it.
func parseAnswer(lines []string) expectedAnswer {
	var a expectedAnswer
	var js string
	for i, l := range lines {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
		if js != "" {
			if _, err := parseShape(js); err == nil {
				break // the body is whole; what follows is prose
			}
			js += " " + l
			continue
		}
		if m := statusLine.FindStringSubmatch(l); m != nil && i == 0 {
			a.status, _ = strconv.Atoi(m[1])
			rest := m[2]
			switch {
			case strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, "["):
				js = rest
			case strings.HasPrefix(l, "HTTP/"):
			default:
				return a // prose about the body
			}
			continue
		}
		if strings.HasPrefix(l, "{") || strings.HasPrefix(l, "[") {
			js = l
			continue
		}
		if m := headerLine.FindStringSubmatch(l); m != nil && a.status != 0 {
			a.headers = append(a.headers, m[1], m[2])
			continue
		}
		break
	}
	if js != "" {
		a.body, a.bodyErr = parseShape(js)
	}
	return a
}

// elisions turn the docs' "..." into JSON the shape matcher reads: {...} any object,
// [...] any array, a trailing , ... more keys or elements than shown.
var elisions = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\{\s*\.\.\.\s*\}`), `{"...":"..."}`},
	{regexp.MustCompile(`,\s*\.\.\.\s*\}`), `,"...":"..."}`},
	{regexp.MustCompile(`\[\s*\.\.\.\s*\]`), `["..."]`},
	{regexp.MustCompile(`,\s*\.\.\.\s*\]`), `,"..."]`},
}

// parseShape parses an answer as the docs write it, with its elisions.
func parseShape(js string) (any, error) {
	for _, e := range elisions {
		js = e.re.ReplaceAllString(js, e.with)
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the answer the doc shows is not JSON (with ... elided): %w: %s", err, js)
	}
	return v, nil
}

// check holds an answer to what the doc shows.
func (a expectedAnswer) check(r apptest.Response) error {
	if a.bodyErr != nil {
		return a.bodyErr
	}
	if a.status != 0 && r.Status != a.status {
		return fmt.Errorf("status %d, the doc shows %d", r.Status, a.status)
	}
	if a.status == 0 && (r.Status < 200 || r.Status > 299) {
		return fmt.Errorf("status %d, and the doc shows no error", r.Status)
	}
	for i := 0; i+1 < len(a.headers); i += 2 {
		if err := matchShape(a.headers[i+1], r.Header.Get(a.headers[i]), a.headers[i]); err != nil {
			return err
		}
	}
	if a.body == nil {
		return nil
	}
	var got any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		return fmt.Errorf("the answer is not JSON: %w", err)
	}
	return matchShape(a.body, got, "")
}

// matchShape holds got to the shape want shows: objects have the keys shown (and
// no others unless elided), arrays the elements shown (and no others unless
// elided), strings are equal unless the doc's holds "..." (any string), numbers
// are numbers, and true, false and null are themselves.
func matchShape(want, got any, at string) error {
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		if !ok {
			return fmt.Errorf("%s: %v, the doc shows a string", orRoot(at), got)
		}
		if !strings.Contains(w, "...") && g != w {
			return fmt.Errorf("%s: %q, the doc shows %q", orRoot(at), g, w)
		}
	case json.Number:
		if _, ok := got.(json.Number); !ok {
			return fmt.Errorf("%s: %v, the doc shows a number", orRoot(at), got)
		}
	case bool, nil:
		if got != want {
			return fmt.Errorf("%s: %v, the doc shows %v", orRoot(at), got, want)
		}
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %v, the doc shows an object", orRoot(at), got)
		}
		_, open := w["..."]
		for k, wv := range w {
			if k == "..." {
				continue
			}
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s: no %q, which the doc shows", orRoot(at), k)
			}
			if err := matchShape(wv, gv, at+"."+k); err != nil {
				return err
			}
		}
		if !open {
			var extra []string
			for k := range g {
				if _, ok := w[k]; !ok {
					extra = append(extra, k)
				}
			}
			if len(extra) > 0 {
				sort.Strings(extra)
				return fmt.Errorf("%s: has %v, which the doc does not show (nor elides with ...)", orRoot(at), extra)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("%s: %v, the doc shows an array", orRoot(at), got)
		}
		open := len(w) > 0 && w[len(w)-1] == "..."
		if open {
			w = w[:len(w)-1]
		}
		if len(g) < len(w) || !open && len(g) != len(w) {
			return fmt.Errorf("%s: %d elements, the doc shows %d", orRoot(at), len(g), len(w))
		}
		for i := range w {
			if err := matchShape(w[i], g[i], fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: cannot match %T", orRoot(at), want)
	}
	return nil
}

func orRoot(at string) string {
	if at == "" {
		return "the answer"
	}
	return at
}

// TestTheDocsExampleCheckerTellsAnAnswerOfAnotherShapeApart holds the matcher that
// TestEveryCurlExampleInTheDocsRunsAgainstALiveApp relies on to what the docs' "..."
// mean, and to failing on what they do not allow.
func TestTheDocsExampleCheckerTellsAnAnswerOfAnotherShapeApart(t *testing.T) {
	for _, c := range []struct {
		doc, answer string
		ok          bool
	}{
		{`{"id":"0198...","status":"queued"}`, `{"id":"0198f3c0","status":"queued"}`, true},
		{`{"id":"0198...","status":"queued"}`, `{"id":"0198f3c0","status":"sent"}`, false},
		{`{"id":"0198...","status":"queued"}`, `{"id":"0198f3c0","status":"queued","extra":1}`, false},
		{`{"id":"0198...",...}`, `{"id":"0198f3c0","status":"queued","extra":1}`, true},
		{`{"id":"0198...",...}`, `{"status":"queued"}`, false},
		{`{"id":"..."}`, `{"id":7}`, false},
		{`{"n":37}`, `{"n":2}`, true},
		{`{"n":37}`, `{"n":"37"}`, false},
		{`{"items":[...]}`, `{"items":[1,2,3]}`, true},
		{`{"items":[...]}`, `{"items":{}}`, false},
		{`{"items":[{"a":1},...]}`, `{"items":[{"a":2},{"b":3}]}`, true},
		{`{"items":[{"a":1},...]}`, `{"items":[]}`, false},
		{`{"items":[{"a":1}]}`, `{"items":[{"a":2},{"a":3}]}`, false},
		{`{"skipped":[]}`, `{"skipped":[{"id":"x"}]}`, false},
		{`{"series":{...},"errors":{}}`, `{"series":{"a":1},"errors":{}}`, true},
		{`{"series":{...},"errors":{}}`, `{"series":{"a":1},"errors":{"emails":"timeout"}}`, false},
		{`{"revoked_at":null}`, `{"revoked_at":"2026-12-06T10:00:00Z"}`, false},
		{`{"enabled":true}`, `{"enabled":false}`, false},
	} {
		want, err := parseShape(c.doc)
		if err != nil {
			t.Fatalf("%s: %v", c.doc, err)
		}
		var got any
		dec := json.NewDecoder(strings.NewReader(c.answer))
		dec.UseNumber()
		if err := dec.Decode(&got); err != nil {
			t.Fatal(err)
		}
		if err := matchShape(want, got, ""); (err == nil) != c.ok {
			t.Errorf("doc %s, answer %s: matched %v (%v), want %v", c.doc, c.answer, err == nil, err, c.ok)
		}
	}
	a := parseAnswer([]string{"# HTTP/1.1 202 Accepted", "# Idempotent-Replayed: true", `# {"id":"0198...","status":"queued"}`, "# prose after it"})
	if a.status != 202 || len(a.headers) != 2 || a.body == nil || a.bodyErr != nil {
		t.Errorf("parseAnswer read %+v", a)
	}
	if err := a.check(apptest.Response{Status: 202, Header: http.Header{}, Body: []byte(`{"id":"0198f","status":"queued"}`)}); err == nil {
		t.Error("an answer without the Idempotent-Replayed header the doc shows passed")
	}
	if err := (expectedAnswer{}).check(apptest.Response{Status: 404, Body: []byte(`{}`)}); err == nil {
		t.Error("a 404 passed where the doc shows no error")
	}
	items, err := tokenizeShell("ID=$(curl -s 'http://127.0.0.1:8080/a?b=1&c=2' \\\n  -d '{\"x\": \"y\n z\"}' | jq -r '.items[0].id')\n# 202 {}\n", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].comment || !items[1].comment {
		t.Fatalf("tokenized into %+v", items)
	}
	name, value, ok := items[0].words[0].assignment()
	if !ok || name != "ID" || len(value) != 1 || !value[0].sub {
		t.Fatalf("assignment read as %q %+v %v", name, value, ok)
	}
	if stages, err := splitPipeline(value[0].text); err != nil || len(stages) != 2 || stages[1] != "jq -r '.items[0].id'" {
		t.Errorf("pipeline split into %q (%v)", stages, err)
	}
	if _, err := tokenizeShell("curl http://127.0.0.1:8080/healthz > out.json", 1); err == nil {
		t.Error("a redirection was not refused")
	}
}
