// CustomsDeserializer - Kafka value bytes (Avro single-object encoding of
// tradeflow.CustomsRecord, docs/schemas.md) to Flink Rows, with Apache
// Avro's BinaryMessageDecoder (checks the C3 01 marker and the writer
// schema's CRC-64-AVRO fingerprint).
//
// Row: record_id STRING, revision BIGINT, reporter STRING, partner STRING,
// flow STRING ('export'|'import'), period DATE, value_usd DECIMAL(18,2).
// A message that does not decode, or whose flow is UNKNOWN, fails the job
// with an IOException naming it (nothing is skipped silently).
package tradeflow.peer;

import java.io.IOException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.time.LocalDate;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.runtime.typeutils.ExternalTypeInfo;
import org.apache.flink.table.types.DataType;
import org.apache.flink.types.Row;

public final class CustomsDeserializer implements DeserializationSchema<Row> {
    private static final long serialVersionUID = 1L;

    public static final DataType ROW_TYPE = DataTypes.ROW(
            DataTypes.FIELD("record_id", DataTypes.STRING()),
            DataTypes.FIELD("revision", DataTypes.BIGINT()),
            DataTypes.FIELD("reporter", DataTypes.STRING()),
            DataTypes.FIELD("partner", DataTypes.STRING()),
            DataTypes.FIELD("flow", DataTypes.STRING()),
            DataTypes.FIELD("period", DataTypes.DATE()),
            DataTypes.FIELD("value_usd", DataTypes.DECIMAL(18, 2)));

    private final String schemaJson;
    private transient BinaryMessageDecoder<GenericRecord> decoder;
    private transient GenericRecord reuse;

    public CustomsDeserializer(String schemaJson) {
        this.schemaJson = schemaJson;
    }

    @Override
    public void open(InitializationContext context) {
        Schema schema = new Schema.Parser().parse(schemaJson);
        decoder = new BinaryMessageDecoder<>(GenericData.get(), schema);
    }

    @Override
    public Row deserialize(byte[] message) throws IOException {
        if (decoder == null) {
            open(null);
        }
        GenericRecord r;
        try {
            r = decoder.decode(message, reuse);
        } catch (Exception e) {
            throw new IOException("cannot decode a CustomsRecord message: " + e.getMessage(), e);
        }
        reuse = r;
        String flow = r.get("flow").toString();
        if ("EXPORT".equals(flow)) {
            flow = "export";
        } else if ("IMPORT".equals(flow)) {
            flow = "import";
        } else {
            throw new IOException("record " + r.get("record_id") + ": flow " + flow + " is not valid in a fact");
        }
        ByteBuffer b = (ByteBuffer) r.get("value_usd");
        byte[] cents = new byte[b.remaining()];
        b.duplicate().get(cents);
        return Row.of(
                r.get("record_id").toString(),
                (Long) r.get("revision"),
                r.get("reporter").toString(),
                r.get("partner").toString(),
                flow,
                LocalDate.ofEpochDay((Integer) r.get("period")),
                new BigDecimal(new BigInteger(cents), 2));
    }

    @Override
    public boolean isEndOfStream(Row nextElement) {
        return false;
    }

    @Override
    @SuppressWarnings("unchecked")
    public TypeInformation<Row> getProducedType() {
        return (TypeInformation<Row>) (TypeInformation<?>) ExternalTypeInfo.of(ROW_TYPE);
    }
}
