-- lc_place_orders(orders jsonb) v2: passes each order's pay_window and signals on to lc_place_order v2.
-- A batch of orders for ONE listing (the batcher never mixes
-- listings, so two batches take listing, stock and ledger head in the same order), one call and
-- one commit. Each order runs in its own subtransaction: a refusal or any failure of one order (a
-- deadlock on a buyer row, a lock timeout, an overflowing total) is undone and reported on that
-- order's row ('lc_refuse:<step>', 'lc_refuse:duplicate' for a unique violation, or
-- 'lc_failed:<sqlstate> <message>'); the batch goes on.
CREATE OR REPLACE FUNCTION lc_place_orders(p_orders jsonb) RETURNS TABLE (
  idx integer, refused text, order_row jsonb, line_row jsonb, buyer_row jsonb, seq bigint
) LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  o jsonb;
  i integer := 0;
  r record;
BEGIN
  FOR o IN SELECT value FROM jsonb_array_elements(p_orders) LOOP
    idx := i;
    BEGIN
      SELECT * INTO STRICT r FROM lc_place_order(
        (o->>'listing')::bigint, (o->>'merchant')::bigint, (o->>'session')::bigint,
        (o->>'sku')::bigint, (o->>'qty')::integer, o->>'ext', o->>'name', o->>'phone',
        (o->>'now')::timestamptz, o->>'public_id', o->>'channel', o->>'to', o->'address',
        o->>'idem', o->>'fingerprint', o->>'actor', o->>'reason', o->>'digest',
        (o->>'pay_window')::integer, NULLIF(o->'signals', 'null'::jsonb));
      refused := NULL;
      order_row := r.order_row; line_row := r.line_row; buyer_row := r.buyer_row; seq := r.seq;
    EXCEPTION
      WHEN OTHERS THEN
        refused := CASE WHEN SQLSTATE = '23505' THEN 'lc_refuse:duplicate'
                        WHEN SQLSTATE = 'P0001' THEN SQLERRM
                        ELSE 'lc_failed:' || SQLSTATE || ' ' || SQLERRM END;
        order_row := NULL; line_row := NULL; buyer_row := NULL; seq := NULL;
    END;
    RETURN NEXT;
    i := i + 1;
  END LOOP;
END
$$;
