package crdt

// Merge joins o into r: afterwards r holds every write either held, as if
// each had applied the other's writes. Both must be whole states (each
// origin's writes applied in order), as held by replicas; a record arriving
// whole at a replica whose scope it enters is merged this way. r does not
// keep references into o's slices except values, which are immutable.
func (r *Record) Merge(o *Record) {
	pa, pb := r.Applied, o.Applied
	exist := joinEntries(r.Exist, r.ExCov, nil, pa, o.Exist, o.ExCov, nil, pb)
	dels := joinEntries(r.Dels, r.DelCov, nil, pa, o.Dels, o.DelCov, nil, pb)

	// Fields: the union of both lists; an absent field is the default
	// (the live deletes' markers, an empty cover).
	fields := make([]Field, 0, len(r.Fields)+len(o.Fields))
	i, j := 0, 0
	for i < len(r.Fields) || j < len(o.Fields) {
		var fa, fb Field
		switch {
		case j == len(o.Fields) || (i < len(r.Fields) && r.Fields[i].Name < o.Fields[j].Name):
			fa = r.Fields[i]
			fb = Field{Name: fa.Name, Cands: o.Dels}
			i++
		case i == len(r.Fields) || o.Fields[j].Name < r.Fields[i].Name:
			fb = o.Fields[j]
			fa = Field{Name: fb.Name, Cands: r.Dels}
			j++
		default:
			fa, fb = r.Fields[i], o.Fields[j]
			i++
			j++
		}
		cands := joinEntries(fa.Cands, fa.Cov, r.DelCov, pa, fb.Cands, fb.Cov, o.DelCov, pb)
		cov := fa.Cov.Clone()
		cov.Join(fb.Cov)
		fields = append(fields, Field{Name: fa.Name, Cands: cands, Cov: cov})
	}
	r.Exist, r.Dels, r.Fields = exist, dels, fields
	r.ExCov = r.ExCov.Clone()
	r.ExCov.Join(o.ExCov)
	r.DelCov = r.DelCov.Clone()
	r.DelCov.Join(o.DelCov)
	r.Applied = r.Applied.Clone()
	r.Applied.Join(o.Applied)
	r.normalize()
}

// joinEntries is the join of two candidate sets with their covers: an entry
// both hold stays; an entry only one holds stays unless the other side has
// applied it (and so saw it die) or covers it.
func joinEntries(a []Entry, covA, delA VV, pa VV, b []Entry, covB, delB VV, pb VV) []Entry {
	var out []Entry
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Stamp().Less(b[j].Stamp())):
			e := a[i]
			if !pb.Covers(e.Dot()) && !covB.Covers(e.Dot()) && !delB.Covers(e.Dot()) {
				out = append(out, e)
			}
			i++
		case i == len(a) || b[j].Stamp().Less(a[i].Stamp()):
			e := b[j]
			if !pa.Covers(e.Dot()) && !covA.Covers(e.Dot()) && !delA.Covers(e.Dot()) {
				out = append(out, e)
			}
			j++
		default: // same stamp: the same write
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
