/// Sizes for people: "12 KiB", "7.8 MiB", "1.2 GiB" (pages are what cowtrace counts; what
/// a server owner budgets is bytes).
public enum ByteCount {
    public static func text(pages: Int) -> String { text(bytes: Int64(pages) * Int64(RunLog.pageSize)) }

    public static func text(bytes: Int64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB"]
        if bytes < 1024 { return "\(bytes) B" }
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        // Whole numbers without a fraction; otherwise one decimal (10 and up: none).
        let tenths = (value * 10).rounded()
        if value >= 10 || tenths.truncatingRemainder(dividingBy: 10) == 0 {
            return "\(Int(value.rounded())) \(units[unit])"
        }
        return "\(Int(tenths) / 10).\(Int(tenths) % 10) \(units[unit])"
    }
}
