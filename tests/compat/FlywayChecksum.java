// Flyway's checksum with the JDK classes Flyway itself uses (flyway-core ChecksumCalculator):
// BufferedReader.readLine over the UTF-8 text, a BOM dropped from the first line, CRC32 fed the
// UTF-8 bytes of each line, the value printed as a signed int. Run as
// `java FlywayChecksum.java FILE...`; prints "checksum<TAB>file" per file. A cross-check for
// the Python oracle in compat.py, independent of its line splitting.
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.zip.CRC32;

public class FlywayChecksum {
    public static void main(String[] args) throws IOException {
        for (String file : args) {
            CRC32 crc = new CRC32();
            try (BufferedReader reader = Files.newBufferedReader(Paths.get(file), StandardCharsets.UTF_8)) {
                String line = reader.readLine();
                if (line != null && line.startsWith("\uFEFF")) {
                    line = line.substring(1);
                }
                while (line != null) {
                    crc.update(line.getBytes(StandardCharsets.UTF_8));
                    line = reader.readLine();
                }
            }
            System.out.println((int) crc.getValue() + "\t" + file);
        }
    }
}
