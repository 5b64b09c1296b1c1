-- lc_place_order(...) v3: the whole placement of one order, called by the PostgreSQL engine
-- (apps/orders/placement/engines/postgres.py) as one prepared statement in autocommit, so the
-- server commits the moment it returns.
--
-- Why a function and not one big statement: each step is its own small statement with a plan
-- plpgsql caches per connection, so when a hot row was changed by a concurrent order while this
-- one waited for its lock, PostgreSQL re-checks only that small UPDATE (EvalPlanQual
-- re-initialises every subplan of the statement it is in).
--
-- Order of work: buyer, order, line and stock movement first (no hot row), then the hot rows as
-- late as possible, in the global lock order (docs/architecture.md): the buyer's units on the
-- listing, the listing, the stock row, the merchant's ledger head; the chained event last.
-- A refusal raises 'lc_refuse:<step>' (SQLSTATE P0001), which rolls back everything the call
-- wrote: no_listing, buyer (per-buyer limit), listing (window or quota), stock, ledger (the
-- merchant has no ledger head yet: the caller creates it and calls again).
--
-- Returns the rows it wrote as jsonb (order, line, buyer) and the event's seq, so the caller
-- builds its objects from what the database holds. Columns not named in an INSERT take their
-- database default; tests/orders/test_placement_sql.py fails when a model gains a column that
-- has neither a value here nor a database default.
-- The chain link is apps.orders.services.ledger.chain_hash.
--
-- v2 (risk control): p_pay_window, when not NULL, is the order's payment window in seconds instead
-- of the listing's when shorter (the risk rules shorten it for a suspected stock-locker); p_signals, when not
-- NULL, is the request's signals row (orders_ordersignals: ip, device_id, user_agent,
-- buyer_registered_at, rules), written with the order.
--
-- v3: the signals row also keeps received_at, when the request reached the server (the signature
-- is v2's: CREATE OR REPLACE replaces v2 in place, and lc_place_orders v2 calls it unchanged).
DROP FUNCTION IF EXISTS lc_place_order(bigint, bigint, bigint, bigint, integer, text, text, text,
  timestamptz, text, text, text, jsonb, text, text, text, text, text);
CREATE OR REPLACE FUNCTION lc_place_order(
  p_listing bigint, p_merchant bigint, p_session bigint, p_sku bigint, p_qty integer,
  p_ext text, p_name text, p_phone text, p_now timestamptz, p_public_id text, p_channel text,
  p_status text, p_address jsonb, p_idem text, p_fingerprint text, p_actor text, p_reason text,
  p_digest text, p_pay_window integer, p_signals jsonb
) RETURNS TABLE (order_row jsonb, line_row jsonb, buyer_row jsonb, seq bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
  v_price numeric; v_window integer; v_limit integer;
  v_buyer orders_buyer%ROWTYPE; v_order orders_order%ROWTYPE; v_line orders_orderline%ROWTYPE;
  v_seq bigint; v_prev text; v_hash text;
  j_order jsonb; j_line jsonb; j_buyer jsonb;
BEGIN
  SELECT l.price, l.payment_window_seconds, l.per_buyer_limit INTO v_price, v_window, v_limit
    FROM catalog_listing l WHERE l.id = p_listing;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:no_listing';
  END IF;

  INSERT INTO orders_buyer AS ob (merchant_id, external_id, name, phone, created_at)
    VALUES (p_merchant, p_ext, p_name, p_phone, p_now)
    ON CONFLICT (merchant_id, external_id) DO UPDATE SET
      name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE ob.name END,
      phone = CASE WHEN excluded.phone <> '' THEN excluded.phone ELSE ob.phone END
    RETURNING ob.* INTO v_buyer;

  INSERT INTO orders_order AS o (merchant_id, public_id, session_id, listing_id, buyer_id, channel,
      status, total, currency, pay_by, shipping_address, idempotency_key, request_hash, version,
      cancel_reason, refund_due, paid_at, carrier, tracking_number, created_at, updated_at)
    VALUES (p_merchant, p_public_id, p_session, p_listing, v_buyer.id, p_channel, p_status,
      v_price * p_qty, 'CNY', p_now + make_interval(secs => LEAST(COALESCE(p_pay_window, v_window), v_window)), p_address, p_idem,
      p_fingerprint, 1, '', 0, NULL, '', '', p_now, p_now)
    RETURNING o.* INTO v_order;
  INSERT INTO orders_orderline AS ol (order_id, listing_id, sku_id, quantity, unit_price, line_total)
    VALUES (v_order.id, p_listing, p_sku, p_qty, v_price, v_price * p_qty)
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
  -- The answer's rows, built before the hot rows are locked (nothing below changes them), so the
  -- locks are not held while they are encoded.
  j_order := to_jsonb(v_order); j_line := to_jsonb(v_line); j_buyer := to_jsonb(v_buyer);

  -- The hot rows, as late as possible; their locks are held until the call's commit.
  IF p_qty > v_limit THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:buyer';
  END IF;
  INSERT INTO orders_listingbuyer AS lb (listing_id, buyer_id, units) VALUES (p_listing, v_buyer.id, p_qty)
    ON CONFLICT (listing_id, buyer_id) DO UPDATE SET units = lb.units + excluded.units
    WHERE lb.units + excluded.units <= v_limit;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:buyer';
  END IF;
  UPDATE catalog_listing l SET sold = l.sold + p_qty, version = l.version + 1
    WHERE l.id = p_listing AND l.sold + p_qty <= l.quota
      AND lc_listing_open(l.status, l.opens_at, l.closes_at, p_now);
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:listing';
  END IF;
  UPDATE inventory_stock s SET reserved = s.reserved + p_qty
    WHERE s.sku_id = p_sku AND s.reserved + p_qty <= s.on_hand;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:stock';
  END IF;
  SELECT h.seq, h.last_hash INTO v_seq, v_prev FROM orders_ledgerhead h
    WHERE h.merchant_id = p_merchant FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = 'lc_refuse:ledger';
  END IF;
  v_seq := v_seq + 1;
  v_hash := encode(sha256(convert_to(v_prev || ':' || v_seq || ':' || p_digest, 'UTF8')), 'hex');
  UPDATE orders_ledgerhead h SET seq = v_seq, last_hash = v_hash WHERE h.merchant_id = p_merchant;
  INSERT INTO orders_orderevent (merchant_id, seq, order_id, from_status, to_status, actor, reason,
      created_at, prev_hash, hash)
    VALUES (p_merchant, v_seq, v_order.id, '', p_status, p_actor, p_reason, p_now, v_prev, v_hash);

  RETURN QUERY SELECT j_order, j_line, j_buyer, v_seq;
END
$$;
