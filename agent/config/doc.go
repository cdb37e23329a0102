// Package config is the configuration of `replicad agent`: the Config
// struct, its defaults, the HCL config file's schema, the command-line
// flags and the validation that names the offending key (and, for a
// file, its position). Flags override the file, the file overrides the
// defaults; the environment toggles of the testing and profiling
// endpoints become Config fields here, so that nothing below reads the
// environment.
package config
