//! Units: the canonical unit of each attribute and the SenML unit symbols
//! (RFC 8428 §12.1, extended by RFC 8798) that convert to it.

/// A canonical unit: the one a field is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Dimensionless ratio 0..1 (SenML `/`).
    Ratio,
    /// Watt.
    Watt,
    /// Kilowatt-hour.
    KilowattHour,
    /// Volt.
    Volt,
    /// Ampere.
    Ampere,
    /// Degree Celsius.
    Celsius,
    /// Microgram per cubic metre.
    MicrogramPerCubicMetre,
    /// Kilogram.
    Kilogram,
    /// Metre.
    Metre,
    /// Kilometre per hour.
    KilometrePerHour,
    /// A count of events.
    Count,
    /// Lux (known, but no attribute of the contract is in lux).
    Lux,
    /// Decibel-milliwatt.
    DecibelMilliwatt,
    /// Decibel.
    Decibel,
}

/// How a SenML unit converts to a canonical unit: `canonical = v * scale + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    /// The unit the value ends up in.
    pub unit: Unit,
    /// Multiplier.
    pub scale: f64,
    /// Added after scaling.
    pub offset: f64,
}

impl Conversion {
    const fn new(unit: Unit, scale: f64, offset: f64) -> Self {
        Self {
            unit,
            scale,
            offset,
        }
    }

    /// Applies the conversion.
    pub fn apply(self, v: f64) -> f64 {
        scale(v, self.scale, self.offset)
    }
}

/// `v * factor + offset`, dividing instead when `factor` is the inverse of a
/// whole number, so that 83 % becomes exactly 0.83 and not 0.8300000000000001.
#[inline]
pub fn scale(v: f64, factor: f64, offset: f64) -> f64 {
    let inverse = 1.0 / factor;
    let scaled = if factor.abs() < 1.0 && inverse.fract() == 0.0 {
        v / inverse
    } else {
        v * factor
    };
    scaled + offset
}

/// The conversion of a SenML unit symbol, or `None` when the symbol is not one
/// this service understands.
pub fn senml_unit(symbol: &str) -> Option<Conversion> {
    use Unit as U;
    Some(match symbol {
        "/" => Conversion::new(U::Ratio, 1.0, 0.0),
        "%" | "%EL" => Conversion::new(U::Ratio, 0.01, 0.0),
        "W" => Conversion::new(U::Watt, 1.0, 0.0),
        "kW" => Conversion::new(U::Watt, 1000.0, 0.0),
        "Wh" => Conversion::new(U::KilowattHour, 0.001, 0.0),
        "kWh" => Conversion::new(U::KilowattHour, 1.0, 0.0),
        "J" => Conversion::new(U::KilowattHour, 1.0 / 3_600_000.0, 0.0),
        "V" => Conversion::new(U::Volt, 1.0, 0.0),
        "A" => Conversion::new(U::Ampere, 1.0, 0.0),
        "Cel" => Conversion::new(U::Celsius, 1.0, 0.0),
        "K" => Conversion::new(U::Celsius, 1.0, -273.15),
        "ug/m3" => Conversion::new(U::MicrogramPerCubicMetre, 1.0, 0.0),
        "kg" => Conversion::new(U::Kilogram, 1.0, 0.0),
        "g" => Conversion::new(U::Kilogram, 0.001, 0.0),
        "m" => Conversion::new(U::Metre, 1.0, 0.0),
        "km/h" => Conversion::new(U::KilometrePerHour, 1.0, 0.0),
        "m/s" => Conversion::new(U::KilometrePerHour, 3.6, 0.0),
        "count" => Conversion::new(U::Count, 1.0, 0.0),
        "lx" => Conversion::new(U::Lux, 1.0, 0.0),
        "dBm" => Conversion::new(U::DecibelMilliwatt, 1.0, 0.0),
        "dB" => Conversion::new(U::Decibel, 1.0, 0.0),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_land_in_canonical_units() {
        let kw = senml_unit("kW").expect("kW is known");
        assert_eq!((kw.unit, kw.apply(1.5)), (Unit::Watt, 1500.0));
        let ms = senml_unit("m/s").expect("m/s is known");
        assert!((ms.apply(10.0) - 36.0).abs() < 1e-9);
        let pct = senml_unit("%").expect("% is known");
        assert_eq!((pct.unit, pct.apply(42.0)), (Unit::Ratio, 0.42));
        let k = senml_unit("K").expect("K is known");
        assert!((k.apply(300.0) - 26.85).abs() < 1e-9);
        assert_eq!(senml_unit("furlong"), None);
    }
}
