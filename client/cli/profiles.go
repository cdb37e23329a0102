package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// profileCmd runs `replicad profile preview DEVICE [PROFILE] | show |
// reload`; handled is false for other commands.
func (e *env) profileCmd(cmd string, a []string) (handled bool, err error) {
	if cmd != "profile" {
		return false, nil
	}
	usage := usagef("usage: replicad profile preview DEVICE [PROFILE] | show | reload")
	if len(a) == 0 {
		return true, usage
	}
	switch a[0] {
	case "preview":
		if len(a) != 2 && len(a) != 3 {
			return true, usage
		}
		name := ""
		if len(a) == 3 {
			name = a[2]
		}
		p, err := e.c.PreviewProfile(e.ctx, a[1], name)
		if err != nil {
			return true, err
		}
		if e.json {
			return true, e.emit(p)
		}
		if p.All {
			fmt.Fprintf(e.out, "device %s has no profile: it holds every record\n", p.Device)
			return true, nil
		}
		rows := [][]string{{"TABLE", "RECORDS", "BYTES"}}
		for _, t := range p.Tables {
			rows = append(rows, []string{t.Table, strconv.Itoa(t.Records), strconv.FormatInt(t.Bytes, 10)})
		}
		rows = append(rows, []string{"total", strconv.Itoa(p.Records), strconv.FormatInt(p.Bytes, 10)})
		fmt.Fprintf(e.out, "device %s, profile %s:\n", p.Device, p.Profile)
		e.table(rows)
		return true, nil
	case "show":
		if len(a) != 1 {
			return true, usage
		}
		raw, err := e.c.Profiles(e.ctx)
		if err != nil {
			return true, err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return true, err
		}
		return true, e.emit(v)
	case "reload":
		if len(a) != 1 {
			return true, usage
		}
		if err := e.c.ReloadProfiles(e.ctx); err != nil {
			return true, err
		}
		fmt.Fprintln(e.out, "profiles reloaded")
		return true, nil
	}
	return true, usage
}
