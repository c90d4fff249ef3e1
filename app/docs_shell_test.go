package app_test

import (
	"fmt"
	"regexp"
	"strings"
)

// The few shell rules the docs' examples rely on, so that TestEveryCurlExampleInTheDocsRunsAgainstALiveApp
// reads a block as bash would: words split on blanks, 'single' and "double" quotes
// (joined when adjacent), backslash-newline continuing a command, a newline inside
// quotes kept, $NAME and ${NAME} expanded outside single quotes, $(...) command
// substitution, and # comments. Anything else (pipes outside $(...), redirections,
// ; and &) is refused, so an example never silently means something else.

// shellSegment is one part of a word: literal text, text to expand, or the inside
// of a command substitution.
type shellSegment struct {
	text   string
	expand bool // $NAME in it is expanded (unquoted or double-quoted)
	sub    bool // text is the command of a $(...)
}

// shellWord is one word of a command, as its segments.
type shellWord []shellSegment

// literal returns the word's text when it holds nothing to expand, else "".
func (w shellWord) literal() string {
	var b strings.Builder
	for _, s := range w {
		if s.sub || s.expand && strings.Contains(s.text, "$") {
			return ""
		}
		b.WriteString(s.text)
	}
	return b.String()
}

var assignName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// assignment reports whether w is NAME=value, and splits it.
func (w shellWord) assignment() (string, shellWord, bool) {
	if len(w) == 0 || w[0].sub || !w[0].expand {
		return "", nil, false
	}
	m := assignName.FindString(w[0].text)
	if m == "" {
		return "", nil, false
	}
	value := shellWord{}
	if rest := w[0].text[len(m):]; rest != "" {
		value = append(value, shellSegment{text: rest, expand: true})
	}
	return strings.TrimSuffix(m, "="), append(value, w[1:]...), true
}

// shellItem is one command (its words) or one whole-line comment, with its line.
type shellItem struct {
	line    int
	comment bool
	text    string // the comment's text, "#" included
	words   []shellWord
}

// tokenizeShell splits src into commands and comment lines. line is src's first line.
func tokenizeShell(src string, line int) ([]shellItem, error) {
	var (
		items  []shellItem
		words  []shellWord
		word   shellWord
		inWord bool
		start  = line
	)
	endWord := func() {
		if inWord {
			words = append(words, word)
		}
		word, inWord = nil, false
	}
	endCommand := func() {
		endWord()
		if len(words) > 0 {
			items = append(items, shellItem{line: start, words: words})
		}
		words = nil
	}
	add := func(s shellSegment) {
		// Adjacent plain text of one kind joins, so "a"b stays one segment per kind.
		if n := len(word); n > 0 && !s.sub && !word[n-1].sub && word[n-1].expand == s.expand {
			word[n-1].text += s.text
		} else {
			word = append(word, s)
		}
		inWord = true
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\n':
			endCommand()
			line++
		case c == ' ' || c == '\t':
			endWord()
		case c == '#' && !inWord:
			end := strings.IndexByte(src[i:], '\n')
			if end < 0 {
				end = len(src) - i
			}
			if len(words) == 0 {
				items = append(items, shellItem{line: line, comment: true, text: src[i : i+end]})
			}
			i += end - 1
		case c == '\\' && i+1 < len(src):
			i++
			if src[i] == '\n' {
				line++
				continue
			}
			add(shellSegment{text: src[i : i+1]})
		case c == '\'':
			end := strings.IndexByte(src[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("line %d: a single quote is not closed", line)
			}
			text := src[i+1 : i+1+end]
			line += strings.Count(text, "\n")
			add(shellSegment{text: text})
			i += end + 1
		case c == '"':
			text, n, err := doubleQuoted(src[i+1:])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			line += strings.Count(src[i+1:i+1+n], "\n")
			add(shellSegment{text: text, expand: true})
			i += n
		case c == '$' && i+1 < len(src) && src[i+1] == '(':
			n, err := closingParen(src[i+2:])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			inner := src[i+2 : i+2+n]
			line += strings.Count(inner, "\n")
			add(shellSegment{text: inner, sub: true})
			i += n + 2
		case strings.IndexByte("|;&<>`", c) >= 0:
			return nil, fmt.Errorf("line %d: %q outside $(...) is not run by the docs' test", line, c)
		default:
			add(shellSegment{text: src[i : i+1], expand: true})
		}
		if len(words) == 0 && !inWord {
			start = line
		}
	}
	endCommand()
	return items, nil
}

// doubleQuoted reads a double-quoted string's inside from s (just past the opening
// quote): it returns the text with \" \\ and \` unescaped (\$ is refused: the docs
// need no literal $ in double quotes), and how many bytes it took, closing quote
// included.
func doubleQuoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), i + 1, nil
		case c == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0:
			if s[i+1] == '$' {
				return "", 0, fmt.Errorf(`\$ in double quotes is not run by the docs' test`)
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", 0, fmt.Errorf("a double quote is not closed")
}

// closingParen returns where the ) closing a $( is in s (just past the "$("),
// skipping quoted text and nested parentheses.
func closingParen(s string) (int, error) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return 0, fmt.Errorf("a single quote in $(...) is not closed")
			}
			i += end + 1
		case '"':
			_, n, err := doubleQuoted(s[i+1:])
			if err != nil {
				return 0, err
			}
			i += n
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return i, nil
			}
			depth--
		}
	}
	return 0, fmt.Errorf("a $( is not closed")
}

// splitPipeline splits a command substitution's text on the | outside quotes.
func splitPipeline(s string) ([]string, error) {
	var out []string
	last := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("a single quote is not closed")
			}
			i += end + 1
		case '"':
			_, n, err := doubleQuoted(s[i+1:])
			if err != nil {
				return nil, err
			}
			i += n
		case '|':
			out = append(out, strings.TrimSpace(s[last:i]))
			last = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[last:])), nil
}

var shellVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expand returns w's text with its variables' values; a variable no earlier
// command set is an error, as `set -u` makes it.
func (s *exampleSession) expand(w shellWord) (string, error) {
	var b strings.Builder
	for _, seg := range w {
		if seg.sub {
			return "", fmt.Errorf("$(%s) is run only as the whole value of an assignment", seg.text)
		}
		if !seg.expand {
			b.WriteString(seg.text)
			continue
		}
		var missing string
		b.WriteString(shellVar.ReplaceAllStringFunc(seg.text, func(m string) string {
			name := strings.Trim(m, "${}")
			v, ok := s.vars[name]
			if !ok && missing == "" {
				missing = name
			}
			return v
		}))
		if missing != "" {
			return "", fmt.Errorf("$%s: no earlier example set it", missing)
		}
	}
	return b.String(), nil
}

// expandAll expands every word.
func (s *exampleSession) expandAll(words []shellWord) ([]string, error) {
	out := make([]string, 0, len(words))
	for _, w := range words {
		v, err := s.expand(w)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
