//! Exact arithmetic on Kubernetes resource quantities (`250m`, `1.5Gi`, `2e3`): parsing into
//! thousandths ("millis") as `i128`, formatting back, and summing resource lists. Owns only the
//! number format; knows nothing about clusters, pods or scheduling.
//!
//! k8s-openapi keeps `Quantity` as an uninterpreted string, so this follows the grammar of
//! `k8s.io/apimachinery/pkg/api/resource`: `<sign><digits>[.<digits>]<suffix>`, where the
//! suffix is binary SI (`Ki`…`Ei`), decimal SI (`n u m "" k M G T P E`) or a decimal exponent
//! (`e3`, `E-2`). Sub-milli fractions round up, as `Quantity.MilliValue()` does.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// A quantity that does not follow the Kubernetes quantity grammar.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid quantity {value:?}: {reason}")]
pub struct QuantityError {
    /// The text that failed to parse.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses a quantity into thousandths of its unit, rounding up.
pub fn parse_millis(quantity: &Quantity) -> Result<i128, QuantityError> {
    parse_millis_str(&quantity.0)
}

/// Parses quantity text into thousandths of its unit, rounding up.
pub fn parse_millis_str(text: &str) -> Result<i128, QuantityError> {
    let fail = |reason: &'static str| QuantityError {
        value: text.to_owned(),
        reason,
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(fail("empty quantity"));
    }
    let (negative, s) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return Err(fail("missing digits"));
    }
    if fraction.contains('.') {
        return Err(fail("more than one decimal point"));
    }
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return Err(fail("too many digits"));
    }
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| fail("bad digits"))?
    };

    let (binary_shift, mut exponent10): (u32, i32) = match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        other => {
            let exp = other
                .strip_prefix(['e', 'E'])
                .ok_or_else(|| fail("unknown suffix"))?;
            let exp: i32 = exp.parse().map_err(|_| fail("bad exponent"))?;
            if !(-40..=40).contains(&exp) {
                return Err(fail("exponent out of range"));
            }
            (0, exp)
        }
    };
    // value = mantissa · 2^shift · 10^(exponent10 − len(fraction)); in millis add 3.
    exponent10 += 3 - i32::try_from(fraction.len()).map_err(|_| fail("too many digits"))?;
    let too_large = || fail("too large");
    let mut value = mantissa
        .checked_mul(1i128 << binary_shift)
        .ok_or_else(too_large)?;
    if exponent10 >= 0 {
        let scale = 10i128
            .checked_pow(exponent10.unsigned_abs())
            .ok_or_else(too_large)?;
        value = value.checked_mul(scale).ok_or_else(too_large)?;
    } else {
        let scale = 10i128
            .checked_pow(exponent10.unsigned_abs())
            .ok_or_else(too_large)?;
        // Round up (away from zero for positive values, as MilliValue does).
        value = (value + scale - 1) / scale;
    }
    Ok(if negative { -value } else { value })
}

/// Formats thousandths back into a quantity: whole units without a suffix (`4`, `8589934592`),
/// otherwise millis (`1500m`). Exact and deterministic, so equal sums always format equally.
pub fn format_millis(millis: i128) -> Quantity {
    if millis % 1000 == 0 {
        Quantity((millis / 1000).to_string())
    } else {
        Quantity(format!("{millis}m"))
    }
}

/// A resource list being summed, in millis per resource name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals(pub BTreeMap<String, i128>);

impl Totals {
    /// Adds `millis` of `resource`.
    pub fn add(&mut self, resource: &str, millis: i128) {
        let total = self.0.entry(resource.to_owned()).or_default();
        *total = total.saturating_add(millis);
    }

    /// Adds every quantity of `list`. Quantities that do not parse are skipped and returned, so
    /// one malformed object cannot hide the rest of a summary.
    pub fn add_list<'a>(
        &mut self,
        list: impl IntoIterator<Item = (&'a String, &'a Quantity)>,
    ) -> Vec<QuantityError> {
        let mut skipped = Vec::new();
        for (resource, quantity) in list {
            match parse_millis(quantity) {
                Ok(millis) => self.add(resource, millis),
                Err(error) => skipped.push(error),
            }
        }
        skipped
    }

    /// Keeps, per resource, the larger of `self` and `other`.
    pub fn max_with(&mut self, other: &Totals) {
        for (resource, millis) in &other.0 {
            let total = self.0.entry(resource.clone()).or_default();
            *total = (*total).max(*millis);
        }
    }

    /// The totals as a Kubernetes resource list.
    pub fn to_quantities(&self) -> BTreeMap<String, Quantity> {
        self.0
            .iter()
            .map(|(resource, millis)| (resource.clone(), format_millis(*millis)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_exactly_to_millis() {
        let table: &[(&str, i128)] = &[
            ("0", 0),
            ("1", 1_000),
            ("250m", 250),
            ("1.5", 1_500),
            ("0.1", 100),
            (".5", 500),
            ("2k", 2_000_000),
            ("1Ki", 1_024_000),
            ("1Mi", 1_048_576_000),
            ("1.5Gi", 1_610_612_736_000),
            ("16Ei", 16 * (1i128 << 60) * 1000),
            ("100M", 100_000_000_000),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("500u", 1), // 0.0005 rounds up to 1 milli
            ("1n", 1),   // rounds up
            ("0n", 0),
            ("-2", -2_000),
            ("+3m", 3),
            ("110", 110_000),
            ("128974848", 128_974_848_000),
            ("129e6", 129_000_000_000),
            ("123Mi", 128_974_848_000),
        ];
        for (text, want) in table {
            assert_eq!(
                parse_millis_str(text).unwrap_or_else(|e| panic!("{text}: {e}")),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn malformed_quantities_are_rejected() {
        for text in [
            "",
            "abc",
            "1Q",
            "1.2.3",
            "m",
            "1e",
            "1e999",
            "99999999999999999999999999999999999999Ei",
        ] {
            assert!(
                parse_millis_str(text).is_err(),
                "{text:?} should be rejected"
            );
        }
    }

    #[test]
    fn sums_format_back_exactly() {
        let table: &[(&[&str], &str)] = &[
            (&["1", "2"], "3"),
            (&["250m", "250m"], "500m"),
            (&["500m", "500m"], "1"),
            (&["1Gi", "512Mi"], "1610612736"),
            (&["1.5", "100m"], "1600m"),
            (&[], "0"),
        ];
        for (inputs, want) in table {
            let mut totals = Totals::default();
            let list: Vec<(String, Quantity)> = inputs
                .iter()
                .map(|q| ("cpu".to_owned(), Quantity((*q).to_owned())))
                .collect();
            for (resource, quantity) in &list {
                assert!(totals.add_list([(resource, quantity)]).is_empty());
            }
            totals.add("cpu", 0);
            assert_eq!(
                totals.to_quantities()["cpu"],
                Quantity((*want).to_owned()),
                "{inputs:?}"
            );
        }
    }

    #[test]
    fn malformed_quantities_are_skipped_not_summed() {
        let mut totals = Totals::default();
        let list = [
            ("cpu".to_owned(), Quantity("2".to_owned())),
            ("memory".to_owned(), Quantity("lots".to_owned())),
        ];
        let skipped = totals.add_list(list.iter().map(|(r, q)| (r, q)));
        assert_eq!(skipped.len(), 1);
        assert_eq!(totals.0, BTreeMap::from([("cpu".to_owned(), 2000)]));
    }
}
