package app_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/mailroom/mailroom/app"
	"github.com/mailroom/mailroom/platform/config"
)

// TestTheDocsShowTheDefaultRetrySchedule holds docs/delivery.md's table of the
// default retry schedule to the policy the defaults make, so neither drifts from the
// other.
func TestTheDocsShowTheDefaultRetrySchedule(t *testing.T) {
	cfg, err := config.Load(config.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	var before time.Duration
	for _, try := range app.DeliveryConfig(cfg).Retry.Schedule() {
		wait, after := hoursMinutes(try.After-before), hoursMinutes(try.After)
		if try.Attempt == 1 {
			wait, after = "—", "at once"
		}
		want = append(want, fmt.Sprintf("| %d | %s | %s |", try.Attempt, wait, after))
		before = try.After
	}
	if last := app.DeliveryConfig(cfg).Retry.Schedule(); last[len(last)-1].After < 24*time.Hour {
		t.Errorf("the default schedule ends %v after the first try: a deferred recipient must be retried for a day", last[len(last)-1].After)
	}
	doc, err := os.ReadFile("../docs/delivery.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "<!-- retry-schedule")
	table, _, ok2 := strings.Cut(table, "<!-- /retry-schedule -->")
	if !ok || !ok2 {
		t.Fatal("docs/delivery.md has no retry-schedule table between its markers")
	}
	var got []string
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| try") {
			got = append(got, strings.TrimSpace(line))
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/delivery.md's retry schedule:\n%s\nthe defaults give:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// hoursMinutes writes d as docs/delivery.md does: "2h", "1h3m", "16m".
func hoursMinutes(d time.Duration) string {
	h, m := int(d.Hours()), int(d.Minutes())%60
	switch {
	case h == 0:
		return fmt.Sprintf("%dm", m)
	case m == 0:
		return fmt.Sprintf("%dh", h)
	default:
		return fmt.Sprintf("%dh%dm", h, m)
	}
}

// TestTheConfigDocListsEveryKeyWithItsDefault holds docs/config.md's table to
// config.Defaults, the code's one list of keys: each key has a row (keys that pair
// up share one, "smtp.host / smtp.port", their defaults paired the same way) naming
// its environment variable, and the default the row shows (the cell's text before
// any " (" remark) is the key's; the table names no key that does not exist.
func TestTheConfigDocListsEveryKeyWithItsDefault(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "| key | env | default |\n|---|---|---|\n")
	if !ok {
		t.Fatal("docs/config.md has no configuration table (| key | env | default |)")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	table = strings.TrimSuffix(table, "\n")
	type row struct{ env, def string }
	rows := map[string]row{}
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.TrimSuffix(strings.TrimPrefix(line, "| "), " |"), " | ")
		if len(cells) != 3 {
			t.Fatalf("configuration table row %q has no key, env and default", line)
		}
		keys := strings.Split(cells[0], " / ")
		def, _, _ := strings.Cut(cells[2], " (")
		defs := strings.Split(def, " / ")
		for i, key := range keys {
			if _, dup := rows[key]; dup {
				t.Errorf("docs/config.md has two rows for %s", key)
			}
			d := def
			if len(defs) == len(keys) {
				d = defs[i]
			}
			rows[key] = row{env: cells[1], def: d}
		}
	}
	for key, value := range config.Defaults() {
		r, ok := rows[key]
		if !ok {
			t.Errorf("docs/config.md's table has no row for %s", key)
			continue
		}
		if want := "MAILROOM_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")); !strings.Contains(r.env, want) {
			t.Errorf("docs/config.md's row of %s names %q, not %s", key, r.env, want)
		}
		if want := docDefault(value); r.def != want {
			t.Errorf("docs/config.md's row of %s shows the default %q; config.Defaults has %q", key, r.def, want)
		}
	}
	for key := range rows {
		if _, ok := config.Defaults()[key]; !ok {
			t.Errorf("docs/config.md's table has a row for %s, which is no key", key)
		}
	}
}

// docDefault writes a default as docs/config.md does: "empty" for an empty text or
// list, a list comma-separated, a number as Go prints it (2, not 2.0).
func docDefault(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return "empty"
		}
	case []string:
		if len(x) == 0 {
			return "empty"
		}
		return strings.Join(x, ",")
	}
	return fmt.Sprint(v)
}

// TestEveryLinkInTheDocsLeadsSomewhere follows every relative link of the README
// and docs/*.md: the file must exist and, for a link with an #anchor, hold a heading
// with that anchor (GitHub's: lower case, punctuation dropped, spaces to hyphens),
// so that moving a section cannot leave a link pointing at nothing.
func TestEveryLinkInTheDocsLeadsSomewhere(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]map[string]bool{} // file, from the repository's root -> its anchors
	anchorsOf := func(file string) (map[string]bool, error) {
		if a, ok := anchors[file]; ok {
			return a, nil
		}
		raw, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			return nil, err
		}
		anchors[file] = headingAnchors(string(raw))
		return anchors[file], nil
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range append([]string{"../README.md"}, docs...) {
		from := strings.TrimPrefix(doc, "../")
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(outsideCodeBlocks(string(raw)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			if file == "" {
				file = from
			} else {
				file = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(from), file)))
			}
			a, err := anchorsOf(file)
			if err != nil {
				t.Errorf("%s links %s: %v", from, target, err)
				continue
			}
			if anchor != "" && !a[anchor] {
				t.Errorf("%s links %s: %s has no heading with the anchor #%s", from, target, file, anchor)
			}
		}
	}
}

// outsideCodeBlocks returns markdown without its fenced code blocks, where a link is
// text.
func outsideCodeBlocks(markdown string) string {
	var b strings.Builder
	fenced := false
	for _, line := range strings.Split(markdown, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// headingAnchors returns the anchors GitHub gives the headings of markdown: each
// heading lower-cased, without punctuation, spaces made hyphens, a repeat suffixed
// -1, -2...
func headingAnchors(markdown string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(outsideCodeBlocks(markdown), "\n") {
		text, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		anchor := b.String()
		if n := seen[anchor]; n > 0 {
			out[fmt.Sprintf("%s-%d", anchor, n)] = true
		} else {
			out[anchor] = true
		}
		seen[anchor]++
	}
	return out
}
