/// Check digits of the tax ids the gateway knows: Portuguese NIF/NIPC and Greek ΑΦΜ. Both are nine digits.
public enum TaxIdentifiers {
    /// Portuguese NIF/NIPC: weights 9…2 over the first eight digits, mod 11.
    public static func isValidPortugueseNIF(_ value: String) -> Bool {
        guard let digits = nineDigits(value), let first = digits.first, [1, 2, 3, 5, 6, 7, 8, 9].contains(first) else {
            return false
        }
        let sum = (0..<8).reduce(0) { $0 + digits[$1] * (9 - $1) }
        let remainder = sum % 11
        return digits[8] == (remainder < 2 ? 0 : 11 - remainder)
    }

    /// Greek ΑΦΜ: weights 2⁸…2¹ over the first eight digits, mod 11, mod 10.
    public static func isValidGreekAFM(_ value: String) -> Bool {
        guard let digits = nineDigits(value), digits.contains(where: { $0 != 0 }) else { return false }
        let sum = (0..<8).reduce(0) { $0 + digits[$1] << (8 - $1) }
        return digits[8] == (sum % 11) % 10
    }

    private static func nineDigits(_ value: String) -> [Int]? {
        let digits = value.compactMap { $0.isASCII ? $0.wholeNumberValue : nil }
        return digits.count == 9 && value.count == 9 ? digits : nil
    }
}
