package lab

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/replicad/replicad/crdt"
	"github.com/zclconf/go-cty/cty"
)

// Scenario is one workload, read from an HCL file (lab/scenarios/*.hcl;
// docs/lab.md documents every key). A file with a sweep block gives one
// Scenario per swept value.
type Scenario struct {
	Name        string
	Description string
	File        string

	Duration time.Duration // the workload: writes, offline periods, partitions, events
	Settle   time.Duration // after it, at most this long for the replicas to converge
	Seeds    []uint64
	// Strategies to compare, by registered name.
	Strategies []string

	Topology       string // hub-and-spoke, mesh or mixed
	Table          string
	Records        int
	Fields         []string
	FieldZipf      float64 // hot-field skew: P(field k) ∝ 1/k^s (0: uniform)
	RecordZipf     float64 // the same over records
	FieldsPerWrite int
	ValueBytes     int // values written by the workload are padded to this length (0: short)
	DeleteFraction float64
	ResolveAfter   time.Duration // manual: a person resolves a conflict this long after the hub shows it (<0: never)
	MaxClockOffset time.Duration // HLC bound on remote stamps ahead of local physical time

	Net        Network
	Hubs       []Hub
	Devices    []DeviceGroup
	Partitions []Partition
	Events     []Event

	// The swept parameter, when the file has a sweep block.
	Sweep *SweepPoint
}

// SweepPoint is the value of the file's swept variable for this scenario.
type SweepPoint struct {
	Name  string
	Label string
	Value float64
}

// Network is how sessions travel.
type Network struct {
	Delay, Jitter   time.Duration // one-way latency of a message, plus uniform jitter
	BandwidthKbps   float64       // per direction (0: unlimited)
	Loss            float64       // probability that a message is lost, which cuts its session
	SyncInterval    time.Duration // a device pulls from each partner this often while online (0: never)
	HubSyncInterval time.Duration // hubs pull from each other this often
	Push            bool          // a local write starts a session with each reachable partner
}

// Hub is one hub node.
type Hub struct {
	Name      string
	ClockSkew time.Duration
}

// DeviceGroup is Count devices with the same behaviour.
type DeviceGroup struct {
	Name       string
	Count      int
	Site       string
	ClockSkew  time.Duration
	SkewSpread time.Duration // each device's skew is ClockSkew plus uniform ±SkewSpread
	WriteRate  float64       // writes per hour (Poisson), online or not
	Offline    []Offline
}

// Offline is a period without network, once or repeated.
type Offline struct {
	Start    time.Duration
	Duration time.Duration
	Every    time.Duration // repeat period (0: once)
	Jitter   time.Duration // each occurrence starts up to this much later, per device
}

// Partition cuts every pair between two sets of nodes for a while.
type Partition struct {
	Start, Duration time.Duration
	A, B            string // node, device group, site or "hubs"/"devices"
}

// Event is one scripted action.
type Event struct {
	At     time.Duration
	Node   string
	Action string // write, delete, sync, offline, online, snapshot
	Table  string
	Record string
	Fields []crdt.FieldValue
	Label  string // snapshot
}

type fileSpec struct {
	Sweep  *sweepSpec `hcl:"sweep,block"`
	Remain hcl.Body   `hcl:",remain"`
}

type sweepSpec struct {
	Name   string    `hcl:"name"`
	Label  string    `hcl:"label,optional"`
	Values []float64 `hcl:"values"`
}

type bodySpec struct {
	Name           string   `hcl:"name"`
	Description    string   `hcl:"description,optional"`
	Duration       string   `hcl:"duration"`
	Settle         string   `hcl:"settle,optional"`
	Seeds          []int64  `hcl:"seeds,optional"`
	Runs           int      `hcl:"runs,optional"`
	Strategies     []string `hcl:"strategies,optional"`
	Topology       string   `hcl:"topology,optional"`
	Table          string   `hcl:"table,optional"`
	Records        int      `hcl:"records,optional"`
	Fields         []string `hcl:"fields,optional"`
	FieldZipf      float64  `hcl:"field_zipf,optional"`
	RecordZipf     float64  `hcl:"record_zipf,optional"`
	FieldsPerWrite int      `hcl:"fields_per_write,optional"`
	ValueBytes     int      `hcl:"value_bytes,optional"`
	DeleteFraction float64  `hcl:"delete_fraction,optional"`
	ResolveAfter   string   `hcl:"resolve_after,optional"`
	MaxClockOffset string   `hcl:"max_clock_offset,optional"`

	Network    *networkSpec    `hcl:"network,block"`
	Hubs       []hubSpec       `hcl:"hub,block"`
	Devices    []deviceSpec    `hcl:"device,block"`
	Partitions []partitionSpec `hcl:"partition,block"`
	Events     []eventSpec     `hcl:"event,block"`
}

type networkSpec struct {
	Delay           string  `hcl:"delay,optional"`
	Jitter          string  `hcl:"jitter,optional"`
	BandwidthKbps   float64 `hcl:"bandwidth_kbps,optional"`
	Loss            float64 `hcl:"loss,optional"`
	SyncInterval    string  `hcl:"sync_interval,optional"`
	HubSyncInterval string  `hcl:"hub_sync_interval,optional"`
	Push            *bool   `hcl:"push,optional"`
}

type hubSpec struct {
	Name      string `hcl:"name,label"`
	ClockSkew string `hcl:"clock_skew,optional"`
}

type deviceSpec struct {
	Name       string        `hcl:"name,label"`
	Count      int           `hcl:"count,optional"`
	Site       string        `hcl:"site,optional"`
	ClockSkew  string        `hcl:"clock_skew,optional"`
	SkewSpread string        `hcl:"clock_skew_spread,optional"`
	WriteRate  float64       `hcl:"write_rate,optional"`
	Offline    []offlineSpec `hcl:"offline,block"`
}

type offlineSpec struct {
	Start    string `hcl:"start,optional"`
	Duration string `hcl:"duration"`
	Every    string `hcl:"every,optional"`
	Jitter   string `hcl:"jitter,optional"`
}

type partitionSpec struct {
	Start    string   `hcl:"start"`
	Duration string   `hcl:"duration"`
	Between  []string `hcl:"between"`
}

type eventSpec struct {
	At     string         `hcl:"at"`
	Node   string         `hcl:"node"`
	Action string         `hcl:"action"`
	Table  string         `hcl:"table,optional"`
	Record string         `hcl:"record,optional"`
	Fields hcl.Expression `hcl:"fields,optional"`
	Label  string         `hcl:"label,optional"`
}

// ParseDuration is time.ParseDuration that also takes days ("7d",
// "1d12h"), and "never" (returned as -1).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "never" {
		return -1, nil
	}
	if s == "" || s == "0" {
		return 0, nil
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %v", s, err)
		}
		days = time.Duration(n * float64(24*time.Hour))
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: %v", s, err)
	}
	return days + d, nil
}

// ParseScenario reads a scenario file. name is used in error messages.
func ParseScenario(name string, src []byte) ([]*Scenario, error) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, name)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	var fs fileSpec
	if diags := gohcl.DecodeBody(f.Body, nil, &fs); diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	if fs.Sweep == nil {
		sc, err := decodeScenario(name, fs.Remain, nil)
		if err != nil {
			return nil, err
		}
		return []*Scenario{sc}, nil
	}
	if len(fs.Sweep.Values) == 0 {
		return nil, fmt.Errorf("%s: sweep %q has no values", name, fs.Sweep.Name)
	}
	var out []*Scenario
	for _, v := range fs.Sweep.Values {
		pt := &SweepPoint{Name: fs.Sweep.Name, Label: fs.Sweep.Label, Value: v}
		if pt.Label == "" {
			pt.Label = pt.Name
		}
		sc, err := decodeScenario(name, fs.Remain, pt)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

func decodeScenario(file string, body hcl.Body, sweep *SweepPoint) (*Scenario, error) {
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}}
	if sweep != nil {
		ctx.Variables[sweep.Name] = cty.NumberFloatVal(sweep.Value)
	}
	var b bodySpec
	if diags := gohcl.DecodeBody(body, ctx, &b); diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	sc := &Scenario{Name: b.Name, Description: b.Description, File: file, Sweep: sweep,
		Topology: b.Topology, Table: b.Table, Records: b.Records, Fields: b.Fields,
		FieldZipf: b.FieldZipf, RecordZipf: b.RecordZipf, FieldsPerWrite: b.FieldsPerWrite, ValueBytes: b.ValueBytes,
		DeleteFraction: b.DeleteFraction, Strategies: b.Strategies}
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s: scenario %q: %s", file, b.Name, fmt.Sprintf(format, args...))
	}
	dur := func(what, s string, def time.Duration) (time.Duration, error) {
		if s == "" {
			return def, nil
		}
		d, err := ParseDuration(s)
		if err != nil {
			return 0, errf("%s: %v", what, err)
		}
		return d, nil
	}
	var err error
	if sc.Duration, err = dur("duration", b.Duration, 0); err != nil {
		return nil, err
	}
	if sc.Duration <= 0 {
		return nil, errf("duration must be positive")
	}
	if sc.Settle, err = dur("settle", b.Settle, 7*24*time.Hour); err != nil {
		return nil, err
	}
	if sc.ResolveAfter, err = dur("resolve_after", b.ResolveAfter, time.Hour); err != nil {
		return nil, err
	}
	if sc.MaxClockOffset, err = dur("max_clock_offset", b.MaxClockOffset, time.Minute); err != nil {
		return nil, err
	}
	switch {
	case len(b.Seeds) > 0:
		for _, s := range b.Seeds {
			sc.Seeds = append(sc.Seeds, uint64(s))
		}
	case b.Runs > 0:
		for i := 1; i <= b.Runs; i++ {
			sc.Seeds = append(sc.Seeds, uint64(i))
		}
	default:
		sc.Seeds = []uint64{1}
	}
	if len(sc.Strategies) == 0 {
		sc.Strategies = DefaultStrategies
	}
	for _, s := range sc.Strategies {
		if _, err := Lookup(s); err != nil {
			return nil, errf("%v", err)
		}
	}
	switch sc.Topology {
	case "":
		sc.Topology = "hub-and-spoke"
	case "hub-and-spoke", "mesh", "mixed":
	default:
		return nil, errf("topology %q: want hub-and-spoke, mesh or mixed", sc.Topology)
	}
	if sc.Table == "" {
		sc.Table = "workorders"
	}
	if sc.Records == 0 {
		sc.Records = 10
	}
	if len(sc.Fields) == 0 {
		sc.Fields = []string{"status", "start", "end", "notes", "assignee", "parts"}
	}
	seen := map[string]bool{}
	for _, f := range sc.Fields {
		if f == "" || seen[f] {
			return nil, errf("fields: empty or repeated name %q", f)
		}
		seen[f] = true
	}
	if sc.FieldsPerWrite <= 0 {
		sc.FieldsPerWrite = 1
	}
	if sc.FieldsPerWrite > len(sc.Fields) {
		return nil, errf("fields_per_write %d > %d fields", sc.FieldsPerWrite, len(sc.Fields))
	}
	if sc.ValueBytes < 0 || sc.ValueBytes > 1<<16 {
		return nil, errf("value_bytes must be in [0, 65536]")
	}
	if sc.FieldZipf < 0 || sc.RecordZipf < 0 || sc.DeleteFraction < 0 || sc.DeleteFraction > 1 {
		return nil, errf("field_zipf and record_zipf must be >= 0, delete_fraction in [0, 1]")
	}
	n := b.Network
	if n == nil {
		n = &networkSpec{}
	}
	sc.Net = Network{BandwidthKbps: n.BandwidthKbps, Loss: n.Loss, Push: n.Push == nil || *n.Push}
	if sc.Net.Delay, err = dur("network.delay", n.Delay, 50*time.Millisecond); err != nil {
		return nil, err
	}
	if sc.Net.Jitter, err = dur("network.jitter", n.Jitter, 0); err != nil {
		return nil, err
	}
	if sc.Net.SyncInterval, err = dur("network.sync_interval", n.SyncInterval, 5*time.Minute); err != nil {
		return nil, err
	}
	if sc.Net.HubSyncInterval, err = dur("network.hub_sync_interval", n.HubSyncInterval, sc.Net.SyncInterval); err != nil {
		return nil, err
	}
	if sc.Net.Loss < 0 || sc.Net.Loss >= 1 || sc.Net.BandwidthKbps < 0 || sc.Net.Delay < 0 || sc.Net.Jitter < 0 {
		return nil, errf("network: loss in [0, 1), delay, jitter and bandwidth >= 0")
	}
	names := map[string]bool{}
	addName := func(s string) error {
		if s == "" || names[s] {
			return errf("empty or repeated node name %q", s)
		}
		names[s] = true
		return nil
	}
	for _, h := range b.Hubs {
		if err := addName(h.Name); err != nil {
			return nil, err
		}
		skew, err := dur("hub.clock_skew", h.ClockSkew, 0)
		if err != nil {
			return nil, err
		}
		sc.Hubs = append(sc.Hubs, Hub{Name: h.Name, ClockSkew: skew})
	}
	for _, d := range b.Devices {
		g := DeviceGroup{Name: d.Name, Count: d.Count, Site: d.Site, WriteRate: d.WriteRate}
		if g.Count == 0 {
			g.Count = 1
		}
		if g.Count < 0 || g.WriteRate < 0 {
			return nil, errf("device %q: count and write_rate must be >= 0", d.Name)
		}
		if g.Site == "" {
			g.Site = d.Name
		}
		for _, nm := range groupNames(g) {
			if err := addName(nm); err != nil {
				return nil, err
			}
		}
		if g.ClockSkew, err = dur("device.clock_skew", d.ClockSkew, 0); err != nil {
			return nil, err
		}
		if g.SkewSpread, err = dur("device.clock_skew_spread", d.SkewSpread, 0); err != nil {
			return nil, err
		}
		for _, o := range d.Offline {
			var off Offline
			if off.Start, err = dur("offline.start", o.Start, 0); err != nil {
				return nil, err
			}
			if off.Duration, err = dur("offline.duration", o.Duration, 0); err != nil {
				return nil, err
			}
			if off.Every, err = dur("offline.every", o.Every, 0); err != nil {
				return nil, err
			}
			if off.Jitter, err = dur("offline.jitter", o.Jitter, 0); err != nil {
				return nil, err
			}
			if off.Every > 0 && off.Duration >= off.Every {
				return nil, errf("device %q: offline duration %v must be shorter than every %v", d.Name, off.Duration, off.Every)
			}
			g.Offline = append(g.Offline, off)
		}
		sc.Devices = append(sc.Devices, g)
	}
	if len(sc.Hubs)+nodeCount(sc.Devices) < 2 {
		return nil, errf("at least two nodes")
	}
	groupOK := func(s string) bool {
		if names[s] || s == "hubs" || s == "devices" {
			return true
		}
		for _, g := range sc.Devices {
			if g.Name == s || g.Site == s {
				return true
			}
		}
		return false
	}
	for _, p := range b.Partitions {
		var pt Partition
		if pt.Start, err = dur("partition.start", p.Start, 0); err != nil {
			return nil, err
		}
		if pt.Duration, err = dur("partition.duration", p.Duration, 0); err != nil {
			return nil, err
		}
		if len(p.Between) != 2 || !groupOK(p.Between[0]) || !groupOK(p.Between[1]) {
			return nil, errf("partition: between takes two known nodes, groups or sites, got %q", p.Between)
		}
		pt.A, pt.B = p.Between[0], p.Between[1]
		sc.Partitions = append(sc.Partitions, pt)
	}
	for i, e := range b.Events {
		ev := Event{Node: e.Node, Action: e.Action, Table: e.Table, Record: e.Record, Label: e.Label}
		if ev.At, err = dur("event.at", e.At, 0); err != nil {
			return nil, err
		}
		if !names[ev.Node] {
			return nil, errf("event %d: unknown node %q", i+1, ev.Node)
		}
		if ev.Table == "" {
			ev.Table = sc.Table
		}
		switch ev.Action {
		case "write":
			if ev.Record == "" {
				return nil, errf("event %d: a write names a record", i+1)
			}
			v, diags := e.Fields.Value(ctx)
			if diags.HasErrors() {
				return nil, errf("event %d: fields: %s", i+1, diags.Error())
			}
			fs, err := ctyFields(v)
			if err != nil {
				return nil, errf("event %d: fields: %v", i+1, err)
			}
			if len(fs) == 0 {
				return nil, errf("event %d: a write sets at least one field", i+1)
			}
			ev.Fields = fs
		case "delete":
			if ev.Record == "" {
				return nil, errf("event %d: a delete names a record", i+1)
			}
		case "sync", "offline", "online", "snapshot":
		default:
			return nil, errf("event %d: action %q: want write, delete, sync, offline, online or snapshot", i+1, ev.Action)
		}
		sc.Events = append(sc.Events, ev)
	}
	sort.SliceStable(sc.Events, func(i, j int) bool { return sc.Events[i].At < sc.Events[j].At })
	return sc, nil
}

func nodeCount(gs []DeviceGroup) int {
	n := 0
	for _, g := range gs {
		n += g.Count
	}
	return n
}

// groupNames are the device names of a group: the group's name when it
// has one device, name-1, name-2... otherwise.
func groupNames(g DeviceGroup) []string {
	if g.Count == 1 {
		return []string{g.Name}
	}
	out := make([]string, g.Count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", g.Name, i+1)
	}
	return out
}

// ctyFields turns an HCL object into sorted field values (JSON values).
func ctyFields(v cty.Value) ([]crdt.FieldValue, error) {
	if v.IsNull() {
		return nil, nil
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return nil, fmt.Errorf("want an object, got %s", v.Type().FriendlyName())
	}
	var out []crdt.FieldValue
	for it := v.ElementIterator(); it.Next(); {
		k, e := it.Element()
		g, err := ctyToGo(e)
		if err != nil {
			return nil, err
		}
		val, err := crdt.ValueOf(g)
		if err != nil {
			return nil, err
		}
		out = append(out, crdt.FieldValue{Name: k.AsString(), Value: val})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func ctyToGo(v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Bool:
		return v.True(), nil
	case t == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		if math.IsInf(f, 0) {
			return nil, fmt.Errorf("number out of range")
		}
		return f, nil
	case t.IsObjectType() || t.IsMapType():
		m := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			g, err := ctyToGo(e)
			if err != nil {
				return nil, err
			}
			m[k.AsString()] = g
		}
		return m, nil
	case t.IsTupleType() || t.IsListType():
		var l []any
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			g, err := ctyToGo(e)
			if err != nil {
				return nil, err
			}
			l = append(l, g)
		}
		if l == nil {
			l = []any{}
		}
		return l, nil
	}
	return nil, fmt.Errorf("unsupported value of type %s", t.FriendlyName())
}
