//! Certificates pgo makes for itself: a CA, and server certificates it
//! signs with bounded validity. The apiserver's own CA (on its home
//! directory) and the instance managers' CA on Kubernetes (in a Secret) are
//! both made here; only where they are kept differs.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the system clock: {0}")]
    Clock(String),
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A CA: its name (the issuer of what it signs) and its certificate and key.
#[derive(Clone)]
pub struct Ca {
    name: &'static str,
    pub pem: Pem,
}

/// The day `days` from now, in UTC.
pub fn day(days: i64) -> Result<jiff::civil::Date, PkiError> {
    let at = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24 * days))
        .map_err(|e| PkiError::Clock(e.to_string()))?;
    Ok(at.to_zoned(jiff::tz::TimeZone::UTC).date())
}

/// True when a certificate ending on `expires` ends within `renew_days`, or
/// its end is not known.
pub fn due(expires: Option<jiff::civil::Date>, renew_days: i64) -> bool {
    match (expires, day(renew_days)) {
        (Some(ends), Ok(soon)) => ends <= soon,
        _ => true,
    }
}

/// Valid from yesterday (clocks differ) for `days`; returns the last day.
fn validity(params: &mut CertificateParams, days: i64) -> Result<jiff::civil::Date, PkiError> {
    let (from, to) = (day(-1)?, day(days)?);
    let ymd = |d: jiff::civil::Date| {
        rcgen::date_time_ymd(
            i32::from(d.year()),
            d.month().unsigned_abs(),
            d.day().unsigned_abs(),
        )
    };
    params.not_before = ymd(from);
    params.not_after = ymd(to);
    Ok(to)
}

/// What a CA named `name` is; an issuer is rebuilt from this and the key.
fn ca_params(name: &str) -> Result<CertificateParams, PkiError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, name);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca)
}

impl Ca {
    /// A new CA valid for `days`.
    pub fn generate(name: &'static str, days: i64) -> Result<Self, PkiError> {
        let key = KeyPair::generate()?;
        let mut params = ca_params(name)?;
        validity(&mut params, days)?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            name,
            pem: Pem {
                cert: cert.pem(),
                key: key.serialize_pem(),
            },
        })
    }

    /// A CA kept from before; its key must parse.
    pub fn from_pem(name: &'static str, pem: Pem) -> Result<Self, PkiError> {
        KeyPair::from_pem(&pem.key)?;
        Ok(Ca { name, pem })
    }

    /// A server certificate for `hosts` (DNS names or IP addresses), named
    /// `common_name`, valid for `days`; returns it and its last day.
    pub fn issue(
        &self,
        hosts: &[String],
        common_name: &str,
        days: i64,
    ) -> Result<(Pem, jiff::civil::Date), PkiError> {
        self.issue_for(hosts, common_name, days, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate: `common_name` is who it is (a server that
    /// authorizes clients by CN reads it), valid for `days`.
    pub fn issue_client(&self, common_name: &str, days: i64) -> Result<(Pem, jiff::civil::Date), PkiError> {
        self.issue_for(&[], common_name, days, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue_for(
        &self,
        hosts: &[String],
        common_name: &str,
        days: i64,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<(Pem, jiff::civil::Date), PkiError> {
        let ca_key = KeyPair::from_pem(&self.pem.key)?;
        let issuer = Issuer::new(ca_params(self.name)?, &ca_key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let ends = validity(&mut params, days)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok((
            Pem {
                cert: cert.pem(),
                key: key.serialize_pem(),
            },
            ends,
        ))
    }
}
