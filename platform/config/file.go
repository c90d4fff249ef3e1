package config

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// fileValues is a config file read into dotted keys. Each value is a scalar as
// written (or a list of them), so strictHook sees the text and the YAML tag rather
// than what a YAML library guessed: an unquoted password 012345 stays "012345", not
// the octal number 5349.
type fileValues struct {
	values map[string]any
	lines  map[string]int
}

// readFile reads and parses the YAML config file at path. Its errors are one line,
// name the file and, where there is one, the line and the key: a syntax error, a
// key set twice, a top level that is not a mapping, an unknown key.
func readFile(path string, defaults map[string]any) (fileValues, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return fileValues{}, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return fileValues{}, fmt.Errorf("config file %s: %s", path, oneLine(err.Error()))
	}
	fv := fileValues{values: map[string]any{}, lines: map[string]int{}}
	if len(doc.Content) == 0 {
		return fv, nil // empty, or comments only
	}
	root := resolve(doc.Content[0])
	switch {
	case root.Kind == yaml.MappingNode:
	case root.Kind == yaml.ScalarNode && root.ShortTag() == tagNull:
		return fv, nil
	default:
		return fileValues{}, fmt.Errorf("config file %s line %d: the top level is %s, not a mapping of sections such as http:",
			path, root.Line, nodeKind(root))
	}
	r := fileReader{path: path, defaults: defaults, out: fv}
	if err := r.mapping(root, ""); err != nil {
		return fileValues{}, err
	}
	return fv, r.checkKnown()
}

// fileReader walks a parsed config file into fileValues.
type fileReader struct {
	path     string
	defaults map[string]any
	out      fileValues
}

// mapping reads the keys of one YAML mapping; prefix is the dotted path to it.
func (r *fileReader) mapping(n *yaml.Node, prefix string) error {
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], resolve(n.Content[i+1])
		if kn.Kind != yaml.ScalarNode {
			return fmt.Errorf("config file %s line %d: a key must be a name, not %s", r.path, kn.Line, nodeKind(kn))
		}
		key := prefix + kn.Value
		if line, dup := first[kn.Value]; dup {
			return fmt.Errorf("config file %s line %d: %s is set twice (first on line %d)", r.path, kn.Line, key, line)
		}
		first[kn.Value] = kn.Line
		// A known section with nothing under it (http: alone, or http: {}) sets no
		// keys, as when it is left out; an unknown one is still refused by name.
		empty := vn.Kind == yaml.MappingNode && len(vn.Content) == 0 ||
			vn.Kind == yaml.ScalarNode && vn.ShortTag() == tagNull
		if empty && isSection(key, r.defaults) {
			continue
		}
		switch vn.Kind {
		case yaml.MappingNode:
			if len(vn.Content) == 0 {
				r.set(key, kn.Line, nil) // an unknown key, refused below
				continue
			}
			if err := r.mapping(vn, key+"."); err != nil {
				return err
			}
		case yaml.SequenceNode:
			items := make([]any, 0, len(vn.Content))
			for _, item := range vn.Content {
				items = append(items, value(resolve(item)))
			}
			r.set(key, kn.Line, items)
		default:
			r.set(key, kn.Line, value(vn))
		}
	}
	return nil
}

func (r *fileReader) set(key string, line int, v any) {
	r.out.values[key] = v
	r.out.lines[key] = line
}

// checkKnown refuses the first key, by line, that is not a config key, and a value
// given to a section (http: 5).
func (r *fileReader) checkKnown() error {
	keys := make([]string, 0, len(r.out.values))
	for key := range r.out.values {
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := r.out.lines[keys[i]], r.out.lines[keys[j]]
		return li < lj || li == lj && keys[i] < keys[j]
	})
	for _, key := range keys {
		if _, ok := r.defaults[key]; ok {
			continue
		}
		if isSection(key, r.defaults) {
			return fmt.Errorf("config file %s line %d: %s is a section: write its keys under it", r.path, r.out.lines[key], key)
		}
		return fmt.Errorf("unknown config key %q in %s line %d", key, r.path, r.out.lines[key])
	}
	return nil
}

// isSection reports whether key is a section (http) or a path to keys, rather than a
// key itself.
func isSection(key string, defaults map[string]any) bool {
	for k := range defaults {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// value is what strictHook decodes from a YAML node: a scalar with its tag and text,
// or, for a list or mapping where a value belongs, an empty one of its kind that
// strictHook refuses by kind.
func value(n *yaml.Node) any {
	switch n.Kind {
	case yaml.SequenceNode:
		return []any{}
	case yaml.MappingNode:
		return map[string]any{}
	}
	return scalar{Tag: n.ShortTag(), Text: n.Value}
}

// resolve follows an alias (*name) to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// nodeKind names a node's kind for an error.
func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return "the value " + show(n.Value)
	}
	return "not a mapping"
}
