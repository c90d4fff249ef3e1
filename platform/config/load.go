package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// EnvPrefix starts every environment variable that sets a key.
const EnvPrefix = "MAILROOM_"

// ConfigFileEnv is the environment variable that names the YAML config file when
// Sources.File (the --config flag) does not: the way a service manager (the systemd
// unit's Environment=) or a container image points Mailroom at its file. It sets no
// key, so it is the one MAILROOM_* variable that is not a key's EnvName.
const ConfigFileEnv = EnvPrefix + "CONFIG"

// Sources are the inputs of Load beyond the built-in defaults. Environ is passed in
// (rather than read from os.Environ) so tests control it.
type Sources struct {
	// File is a YAML file path (the --config flag); empty means the file that
	// MAILROOM_CONFIG in Environ names, and none when that is unset or empty.
	File string
	// Environ holds KEY=VALUE pairs; only MAILROOM_* entries are read.
	Environ []string
	// Flags holds dotted keys set on the command line; they win over everything.
	Flags map[string]string
}

// Load builds the configuration from defaults, file, environment and flags, and
// validates it. Every error is one line naming the key or variable at fault and,
// for a value that does not fit its key, where the value came from.
func Load(src Sources) (*Config, error) {
	cfg, err := load(src)
	if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
		// A value holding a newline (an address from a block scalar) reaches a
		// message through an error of the standard library; keep it one line.
		return nil, errors.New(oneLine(err.Error()))
	}
	return cfg, err
}

func load(src Sources) (*Config, error) {
	defaults := Defaults()
	// origin says where each key's value came from, for the error naming it.
	origin := map[string]string{}
	k := koanf.New(".")
	if err := k.Load(confmap.Provider(defaults, "."), nil); err != nil {
		return nil, fmt.Errorf("load defaults: %w", err)
	}
	if file, named := configFile(src); file != "" {
		fv, err := readFile(file, defaults)
		if err != nil {
			return nil, fmt.Errorf("%w%s", err, named)
		}
		for key, line := range fv.lines {
			origin[key] = fmt.Sprintf("in %s line %d", file, line)
		}
		if err := k.Load(confmap.Provider(fv.values, "."), nil); err != nil {
			return nil, fmt.Errorf("config file %s: %w%s", file, err, named)
		}
	}
	env, err := fromEnviron(src.Environ, defaults)
	if err != nil {
		return nil, err
	}
	for key := range env {
		origin[key] = "from " + EnvName(key)
	}
	if err := k.Load(confmap.Provider(env, "."), nil); err != nil {
		return nil, fmt.Errorf("load environment: %w", err)
	}
	flags := map[string]any{}
	for key, v := range src.Flags {
		if _, ok := defaults[key]; !ok {
			return nil, fmt.Errorf("unknown config key %q set by flag", key)
		}
		flags[key] = typed(defaults[key], v)
		origin[key] = "from a flag"
	}
	if err := k.Load(confmap.Provider(flags, "."), nil); err != nil {
		return nil, fmt.Errorf("load flags: %w", err)
	}

	var cfg Config
	if err := unmarshalStrict(k, &cfg); err != nil {
		key, reason := decodeErrorKey(err)
		if where := origin[key]; where != "" {
			return nil, fmt.Errorf("invalid config: %s: %s (%s)", key, reason, where)
		}
		return nil, fmt.Errorf("invalid config: %s: %s", key, reason)
	}
	if err := cfg.validate(func(key string) string { return origin[key] }); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// configFile is the config file of src: File (the flag) when set, else the value of
// MAILROOM_CONFIG (the last, if the environment holds it twice). named is what an
// error about the file adds to say where its name came from: nothing for the flag,
// which the user just typed, " (named by MAILROOM_CONFIG)" for the environment.
func configFile(src Sources) (file, named string) {
	if src.File != "" {
		return src.File, ""
	}
	for _, kv := range src.Environ {
		if name, value, ok := strings.Cut(kv, "="); ok && name == ConfigFileEnv {
			file = value
		}
	}
	if file == "" {
		return "", ""
	}
	return file, " (named by " + ConfigFileEnv + ")"
}

// fromEnviron maps MAILROOM_* variables to keys by matching the known keys, because
// keys hold underscores themselves (topics.dead_letter is MAILROOM_TOPICS_DEAD_LETTER).
func fromEnviron(environ []string, defaults map[string]any) (map[string]any, error) {
	byEnv := make(map[string]string, len(defaults))
	for key := range defaults {
		byEnv[EnvName(key)] = key
	}
	out := map[string]any{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || name == ConfigFileEnv {
			continue
		}
		key, known := byEnv[name]
		if !known {
			return nil, fmt.Errorf("unknown environment variable %s: no config key is called that", name)
		}
		out[key] = typed(defaults[key], value)
	}
	return out, nil
}

// EnvName is the environment variable that sets key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// typed turns a string from the environment or a flag into a list where the key
// holds a list; everything else is converted by strictHook.
func typed(def any, v string) any {
	if _, isList := def.([]string); isList {
		return splitList(v)
	}
	return v
}
