{#- One bound of Wilson's 95% score interval for a proportion p over n trials (sign '-' or '+'). -#}
{% macro wilson_bound(p, n, sign) -%}
    (({{ p }} + 1.959964 * 1.959964 / (2 * {{ n }}))
        {{ sign }} 1.959964 * sqrt({{ p }} * (1 - {{ p }}) / {{ n }} + 1.959964 * 1.959964 / (4 * {{ n }} * {{ n }})))
    / (1 + 1.959964 * 1.959964 / {{ n }})
{%- endmacro %}

{#- One bound of the normal-approximation 95% interval of a mean (sign '-' or '+'). -#}
{% macro normal_bound(mean, sd, n, sign) -%}
    ({{ mean }} {{ sign }} 1.959964 * {{ sd }} / sqrt({{ n }}))
{%- endmacro %}
