"""PostgreSQL: ``lc_place_orders`` reports ANY failure of one order on that order's row (its
subtransaction is undone) instead of failing the whole batch: a deadlock on a buyer row between
two batches, a lock timeout or an overflowing total hits one buyer, not up to 32."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION lc_place_orders(p_orders jsonb) RETURNS TABLE (
  idx integer, refused text, order_id bigint, total numeric, pay_by timestamptz, buyer_id bigint,
  buyer_name text, buyer_phone text, seq bigint, unit_price numeric
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
        o->>'idem', o->>'fingerprint', o->>'actor', o->>'reason', o->>'digest');
      refused := NULL;
      order_id := r.order_id; total := r.total; pay_by := r.pay_by; buyer_id := r.buyer_id;
      buyer_name := r.buyer_name; buyer_phone := r.buyer_phone; seq := r.seq; unit_price := r.unit_price;
    EXCEPTION
      WHEN OTHERS THEN
        -- A refusal (lc_refuse:...), a duplicate key, or any failure of this order alone (a
        -- deadlock on a buyer row, a lock timeout, an overflowing total): undone with its
        -- subtransaction and reported on its row; the batch goes on.
        refused := CASE WHEN SQLSTATE = '23505' THEN 'lc_refuse:duplicate'
                        WHEN SQLSTATE = 'P0001' THEN SQLERRM
                        ELSE 'lc_failed:' || SQLSTATE || ' ' || SQLERRM END;
        order_id := NULL; total := NULL; pay_by := NULL; buyer_id := NULL;
        buyer_name := NULL; buyer_phone := NULL; seq := NULL; unit_price := NULL;
    END;
    RETURN NEXT;
    i := i + 1;
  END LOOP;
END
$$;
"""


def forward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


class Migration(migrations.Migration):
    dependencies = [("orders", "0005_lc_place_orders")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
