"""PostgreSQL: ``lc_place_orders(jsonb)`` places a batch of orders in one call and one commit.

Each order runs ``lc_place_order`` in its own exception block (a subtransaction): a refusal or a
duplicate Idempotency-Key undoes that order alone and is reported on its row (``refused``), the
others stand. The batch commits once, so a flash sale pays one commit, one round trip and one
turn at the hot rows' locks per batch instead of per order. ``placement._Batcher`` keeps batches
at 32 orders or fewer (PostgreSQL tracks up to 64 subtransactions per transaction cheaply)."""

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
      WHEN raise_exception OR unique_violation THEN
        refused := CASE WHEN SQLSTATE = '23505' THEN 'lc_refuse:duplicate' ELSE SQLERRM END;
        order_id := NULL; total := NULL; pay_by := NULL; buyer_id := NULL;
        buyer_name := NULL; buyer_phone := NULL; seq := NULL; unit_price := NULL;
    END;
    RETURN NEXT;
    i := i + 1;
  END LOOP;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS lc_place_orders(jsonb);"


def forward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backward(apps, schema_editor):  # noqa: ANN001, ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_lc_place_order")]
    operations = [migrations.RunPython(forward, backward)]
