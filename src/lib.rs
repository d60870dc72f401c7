pub mod krb5;
