-- lc_listing_open(status, opens_at, closes_at, now): is the listing's sale window open at now?
-- The SQL form of apps.catalog.window.is_open; tests/catalog/test_window.py runs one table of
-- cases against both.
CREATE OR REPLACE FUNCTION lc_listing_open(p_status text, p_opens timestamptz, p_closes timestamptz, p_now timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT p_status <> 'closed'
     AND (p_closes IS NULL OR p_closes > p_now)  -- never NULL: a boolean, not SQL's unknown
     AND ((p_opens IS NULL AND p_status = 'open') OR (p_opens IS NOT NULL AND p_opens <= p_now))
$$;
