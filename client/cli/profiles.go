package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// runProfile runs `replicad profile preview DEVICE [PROFILE] | show |
// reload`.
func runProfile(c *call) error {
	a := c.args
	usage := c.usage()
	switch a[0] {
	case "preview":
		if len(a) != 2 && len(a) != 3 {
			return usage
		}
		name := ""
		if len(a) == 3 {
			name = a[2]
		}
		p, err := c.c.PreviewProfile(c.ctx, a[1], name)
		if err != nil {
			return err
		}
		if c.json {
			return c.emit(p)
		}
		if p.All {
			fmt.Fprintf(c.out, "device %s has no profile: it holds every record\n", p.Device)
			return nil
		}
		rows := [][]string{{"TABLE", "RECORDS", "BYTES"}}
		for _, t := range p.Tables {
			rows = append(rows, []string{t.Table, strconv.Itoa(t.Records), strconv.FormatInt(t.Bytes, 10)})
		}
		rows = append(rows, []string{"total", strconv.Itoa(p.Records), strconv.FormatInt(p.Bytes, 10)})
		fmt.Fprintf(c.out, "device %s, profile %s:\n", p.Device, p.Profile)
		c.table(rows)
		return nil
	case "show":
		if len(a) != 1 {
			return usage
		}
		raw, err := c.c.Profiles(c.ctx)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		return c.emit(v)
	case "reload":
		if len(a) != 1 {
			return usage
		}
		if err := c.c.ReloadProfiles(c.ctx); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "profiles reloaded")
		return nil
	}
	return usage
}
