-- lc_place_orders(orders jsonb) v3: the batch places its orders itself and writes each hot row
-- (the listing's sold units, the stock's reserved units, the merchant's ledger head) ONCE per
-- batch instead of once per order.
--
-- v2 called lc_place_order per order: every order updated the listing, the stock row and the
-- ledger head again, each update a new row version of a row the batch's earlier subtransactions
-- had already updated (and a MultiXact to carry their locks). Measured under a flash sale, those
-- three rows were most of PostgreSQL's CPU per order that was not the order's own rows.
--
-- What each order does, in its own subtransaction (a refusal or failure undoes that order only,
-- reported as in v2: 'lc_refuse:<step>', 'lc_refuse:duplicate', 'lc_failed:<sqlstate> <message>'):
--   its own rows, exactly as lc_place_order v3 writes them (buyer, order, line, stock movement,
--   signals), then the buyer's units on the listing (the per-buyer limit, a row of its own), then
--   the three hot rows: the first order of the batch that gets that far LOCKS each (FOR NO KEY
--   UPDATE, the lock v2's UPDATE took: other transactions' foreign-key checks on these rows are
--   not held up; held to the batch's commit) and reads it; every order is then checked against what the row
--   held plus what the batch's accepted orders took before it (quota and window, stock, the
--   ledger chain), and its chained ledger event is written with the next seq.
-- What the batch then does, once, after its last order: adds the units its accepted orders took
-- to the listing (and their count to its version) and to the stock row, and moves the ledger head
-- to the last event. A batch's numbers are committed together or not at all (one commit).
--
-- The lock order is v2's: the buyer's units, the listing, the stock row, the ledger head. The
-- batcher never mixes listings; an order for another listing (another caller) first writes what
-- the batch took so far to the rows of the listing before, and the checks start again from the
-- rows of its own.
--
-- A lock taken in a subtransaction that is then rolled back is released (PostgreSQL), so what an
-- order learnt of a hot row counts for the orders after it only when that order's subtransaction
-- succeeded: the "taken" flags and totals change only as the subtransaction's last statements.
CREATE OR REPLACE FUNCTION lc_place_orders(p_orders jsonb) RETURNS TABLE (
  idx integer, refused text, order_row jsonb, line_row jsonb, buyer_row jsonb, seq bigint
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  o jsonb;
  i integer := 0;
  -- this order
  p_listing bigint; p_merchant bigint; p_sku bigint; p_qty integer; p_now timestamptz;
  p_public_id text; p_status text; p_signals jsonb; p_pay_window integer;
  v_buyer orders_buyer%ROWTYPE; v_order orders_order%ROWTYPE; v_line orders_orderline%ROWTYPE;
  v_seq bigint; v_hash text;
  -- the listing whose hot rows the batch holds
  b_listing bigint := NULL; b_merchant bigint; b_sku bigint;
  b_price numeric; b_window integer; b_limit integer;
  has_listing boolean := false; has_stock boolean := false; has_head boolean := false;
  l_status text; l_opens timestamptz; l_closes timestamptz; l_sold bigint; l_quota bigint;
  s_reserved bigint; s_on_hand bigint;
  h_seq bigint; h_hash text;
  -- what the batch's accepted orders took so far
  t_units bigint := 0; t_orders integer := 0;
BEGIN
  FOR o IN SELECT value FROM jsonb_array_elements(p_orders) LOOP
    idx := i;
    p_listing := (o->>'listing')::bigint; p_merchant := (o->>'merchant')::bigint;
    p_sku := (o->>'sku')::bigint;
    IF b_listing IS DISTINCT FROM p_listing OR b_merchant IS DISTINCT FROM p_merchant
        OR b_sku IS DISTINCT FROM p_sku THEN
      -- Another listing (never from the batcher): write what was taken so far, start again.
      IF t_orders > 0 THEN
        UPDATE catalog_listing l SET sold = l.sold + t_units, version = l.version + t_orders WHERE l.id = b_listing;
        UPDATE inventory_stock s SET reserved = s.reserved + t_units WHERE s.sku_id = b_sku;
        UPDATE orders_ledgerhead h SET seq = h_seq, last_hash = h_hash WHERE h.merchant_id = b_merchant;
      END IF;
      b_listing := p_listing; b_merchant := p_merchant; b_sku := p_sku;
      b_price := NULL;
      has_listing := false; has_stock := false; has_head := false;
      t_units := 0; t_orders := 0;
    END IF;
    BEGIN
      p_qty := (o->>'qty')::integer; p_now := (o->>'now')::timestamptz;
      p_public_id := o->>'public_id'; p_status := o->>'to';
      p_pay_window := (o->>'pay_window')::integer; p_signals := NULLIF(o->'signals', 'null'::jsonb);
      IF b_price IS NULL THEN
        SELECT l.price, l.payment_window_seconds, l.per_buyer_limit INTO b_price, b_window, b_limit
          FROM catalog_listing l WHERE l.id = p_listing;
        IF NOT FOUND THEN
          RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:no_listing';
        END IF;
      END IF;

      INSERT INTO orders_buyer AS ob (merchant_id, external_id, name, phone, created_at)
        VALUES (p_merchant, o->>'ext', o->>'name', o->>'phone', p_now)
        ON CONFLICT (merchant_id, external_id) DO UPDATE SET
          name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE ob.name END,
          phone = CASE WHEN excluded.phone <> '' THEN excluded.phone ELSE ob.phone END
        RETURNING ob.* INTO v_buyer;
      INSERT INTO orders_order AS ord (merchant_id, public_id, session_id, listing_id, buyer_id, channel,
          status, total, currency, pay_by, shipping_address, idempotency_key, request_hash, version,
          cancel_reason, refund_due, paid_at, carrier, tracking_number, created_at, updated_at)
        VALUES (p_merchant, p_public_id, (o->>'session')::bigint, p_listing, v_buyer.id, o->>'channel', p_status,
          b_price * p_qty, 'CNY',
          p_now + make_interval(secs => LEAST(COALESCE(p_pay_window, b_window), b_window)), o->'address',
          o->>'idem', o->>'fingerprint', 1, '', 0, NULL, '', '', p_now, p_now)
        RETURNING ord.* INTO v_order;
      INSERT INTO orders_orderline AS ol (order_id, listing_id, sku_id, quantity, unit_price, line_total)
        VALUES (v_order.id, p_listing, p_sku, p_qty, b_price, b_price * p_qty)
        RETURNING ol.* INTO v_line;
      INSERT INTO inventory_stockmovement (merchant_id, sku_id, kind, on_hand_delta, reserved_delta,
          reason, reference, created_at)
        VALUES (p_merchant, p_sku, 'reserve', 0, p_qty, 'order', p_public_id, p_now);
      IF p_signals IS NOT NULL THEN
        INSERT INTO orders_ordersignals (order_id, ip, device_id, user_agent, buyer_registered_at, received_at, rules)
          VALUES (v_order.id, COALESCE(p_signals->>'ip', ''), COALESCE(p_signals->>'device_id', ''),
            COALESCE(p_signals->>'user_agent', ''), (p_signals->>'buyer_registered_at')::timestamptz,
            (p_signals->>'received_at')::timestamptz, COALESCE(p_signals->'rules', '{}'::jsonb));
      END IF;

      -- The buyer's units on the listing: a row of the buyer's own.
      IF p_qty > b_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:buyer';
      END IF;
      INSERT INTO orders_listingbuyer AS lb (listing_id, buyer_id, units) VALUES (p_listing, v_buyer.id, p_qty)
        ON CONFLICT (listing_id, buyer_id) DO UPDATE SET units = lb.units + excluded.units
        WHERE lb.units + excluded.units <= b_limit;
      IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:buyer';
      END IF;

      -- The hot rows: locked and read by the first order that gets here, then counted in memory.
      IF NOT has_listing THEN
        -- The facts again, under the lock: nothing changes them before the commit now.
        SELECT l.status, l.opens_at, l.closes_at, l.sold, l.quota, l.price, l.payment_window_seconds,
            l.per_buyer_limit
          INTO l_status, l_opens, l_closes, l_sold, l_quota, b_price, b_window, b_limit
          FROM catalog_listing l WHERE l.id = p_listing FOR NO KEY UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:no_listing';
        END IF;
      END IF;
      IF l_sold + t_units + p_qty > l_quota OR NOT lc_listing_open(l_status, l_opens, l_closes, p_now) THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:listing';
      END IF;
      IF NOT has_stock THEN
        SELECT s.reserved, s.on_hand INTO s_reserved, s_on_hand
          FROM inventory_stock s WHERE s.sku_id = p_sku FOR NO KEY UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:stock';
        END IF;
      END IF;
      IF s_reserved + t_units + p_qty > s_on_hand THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:stock';
      END IF;
      IF NOT has_head THEN
        SELECT h.seq, h.last_hash INTO h_seq, h_hash FROM orders_ledgerhead h
          WHERE h.merchant_id = p_merchant FOR NO KEY UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:ledger';
        END IF;
      END IF;
      v_seq := h_seq + 1;
      v_hash := encode(sha256(convert_to(h_hash || ':' || v_seq || ':' || (o->>'digest'), 'UTF8')), 'hex');
      INSERT INTO orders_orderevent (merchant_id, seq, order_id, from_status, to_status, actor, reason,
          created_at, prev_hash, hash)
        VALUES (p_merchant, v_seq, v_order.id, '', p_status, o->>'actor', o->>'reason', p_now, h_hash, v_hash);

      order_row := to_jsonb(v_order); line_row := to_jsonb(v_line); buyer_row := to_jsonb(v_buyer);
      -- The order is in: what it took counts from here on (plain assignments, which cannot fail).
      has_listing := true; has_stock := true; has_head := true;
      h_seq := v_seq; h_hash := v_hash;
      t_units := t_units + p_qty; t_orders := t_orders + 1;
      refused := NULL; seq := v_seq;
    EXCEPTION
      WHEN OTHERS THEN
        -- Rolled back with the order: the locks it took (has_* were not set), so the next order
        -- locks and reads those rows again.
        refused := CASE WHEN SQLSTATE = '23505' THEN 'lc_refuse:duplicate'
                        WHEN SQLSTATE = 'P0001' THEN SQLERRM
                        ELSE 'lc_failed:' || SQLSTATE || ' ' || SQLERRM END;
        order_row := NULL; line_row := NULL; buyer_row := NULL; seq := NULL;
    END;
    RETURN NEXT;
    i := i + 1;
  END LOOP;
  IF t_orders > 0 THEN
    UPDATE catalog_listing l SET sold = l.sold + t_units, version = l.version + t_orders WHERE l.id = b_listing;
    UPDATE inventory_stock s SET reserved = s.reserved + t_units WHERE s.sku_id = b_sku;
    UPDATE orders_ledgerhead h SET seq = h_seq, last_hash = h_hash WHERE h.merchant_id = b_merchant;
  END IF;
END
$$;
