package store

import (
	"context"
	"os"
	"testing"
)

func TestZZProbe(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t, nil)
	dir := t.TempDir()
	p := dir + "/a.csv"
	q := func(s string) {
		rows, err := db.SQL().QueryContext(ctx, s)
		if err != nil {
			t.Log(s, err)
			return
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			t.Logf("%v", vals)
		}
	}
	os.WriteFile(p, []byte("1,\"a,b\",,1772447400123456,true,,2\n2,x y ,3,0,false,5,\n3,\"q\"\"\nz\",1,1,1,,\n"), 0o600)
	rc := "read_csv('" + p + "', columns={'e':'INTEGER','unit':'VARCHAR','v':'INTEGER','ts':'BIGINT','h':'BOOLEAN','hv':'INTEGER','s':'INTEGER'}, header=false, auto_detect=false, delim=',', quote='\"', escape='\"', new_line='\\n')"
	q("SELECT e, unit, v, make_timestamp(ts), h, hv, s, make_timestamp(ts)::TIMESTAMPTZ, to_timestamp(0)+to_microseconds(ts), current_setting('TimeZone') FROM " + rc)
	os.WriteFile(p, []byte("9,\"a,b\",,1772447400123456,true,,2\n2,x y ,3,0,false,5,\n3,\"q\"\"\nz\",1,1,1,,\n"), 0o600)
	q("SELECT e FROM " + rc)
	q("SELECT current_setting('enable_external_file_cache')")
	q("SELECT version()")
	q("SELECT make_timestamptz(1772447400123456)")
	q("SELECT to_timestamp(0)+to_microseconds(1772447400123456::BIGINT), make_timestamp(1772447400123456::BIGINT) AT TIME ZONE 'UTC'")
}
