package store

import (
	"context"
)

// ItemReward is how often a journey showed an item and how often it was
// clicked: Shown counts the distinct units it was shown to, Clicked those of
// them with a reward event on the item at or after the first time it was
// shown to them. Each (unit, item) pair is one Bernoulli trial.
type ItemReward struct {
	Item    string
	Shown   int64
	Clicked int64
}

// ItemRewards returns, for every item journey has shown (in any policy's
// list), its trials and successes (ItemReward), a click being an event of
// type rewardEvent whose properties' "item" is the item. Erased units count
// under their pseudonym for Shown only: their events are gone.
func (db *DB) ItemRewards(ctx context.Context, journey, rewardEvent string) ([]ItemReward, error) {
	const op = "store.ItemRewards"
	rows, err := db.db.QueryContext(ctx, `
WITH shown AS (
  SELECT unit, item, min(ts) AS first FROM (
    SELECT unit, ts, unnest(json_extract_string(items, '$[*].id')) AS item
    FROM journey_decisions WHERE journey = ?
  ) GROUP BY unit, item
), clicked AS (
  SELECT unit, json_extract_string(properties, '$.item') AS item, max(ts) AS last
  FROM events WHERE type = ? GROUP BY 1, 2
)
SELECT s.item, count(*), count(c.unit) FILTER (WHERE c.last >= s.first)
FROM shown s LEFT JOIN clicked c ON c.unit = s.unit AND c.item = s.item
GROUP BY s.item ORDER BY s.item`, journey, rewardEvent)
	if err != nil {
		return nil, internal(op, err)
	}
	defer rows.Close()
	var out []ItemReward
	for rows.Next() {
		var r ItemReward
		if err := rows.Scan(&r.Item, &r.Shown, &r.Clicked); err != nil {
			return nil, internal(op, err)
		}
		out = append(out, r)
	}
	return out, internal(op, rows.Err())
}
